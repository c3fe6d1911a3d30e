// KEY=VALUE files in shell syntax (os-release, lsb-release, ifcfg, /etc/default/grub): a variable's value.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vdkit::fixups {

// The value with shell quotes removed; nullopt when the file does not set key.
std::optional<std::string> shell_var(std::string_view text, std::string_view key);

}  // namespace vdkit::fixups
