// Boot Loader Specification entries (/boot/loader/entries/*.conf): options lines rewritten, an entry read.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/boot_menu.h"
#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// options lines. Options are not appended to one that takes $kernelopts from grubenv (rewrite_grubenv appends
// there).
std::string rewrite_bls_entry(std::string_view text, const CmdlineEdit& edit);
BootEntry parse_bls_entry(std::string_view text);

}  // namespace vdkit::fixups
