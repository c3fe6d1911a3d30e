// grubenv, grub's 1024-byte environment block: kernelopts rewritten, variables read and set, the block size kept.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// /boot/grub2/grubenv: kernelopts= (where BLS entries that read $kernelopts get their options); keeps the file's
// 1024-byte '#' padding.
std::string rewrite_grubenv(std::string_view text, const CmdlineEdit& edit);
// Sets (or adds) key=value, keeping a 1024-byte '#'-padded block exactly 1024 bytes. Returns nullopt when the
// block has no room for it.
std::optional<std::string> set_grubenv_var(std::string_view text, std::string_view key, std::string_view value);
// A grubenv variable's value (grub-editenv's escapes undone), nullopt when unset.
std::optional<std::string> grubenv_var(std::string_view text, std::string_view key);

}  // namespace vdkit::fixups
