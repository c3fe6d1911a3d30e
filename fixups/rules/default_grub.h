// /etc/default/grub (and grub.d/*.cfg): the kernel command lines grub-mkconfig uses, and GRUB_DEFAULT.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// GRUB_CMDLINE_LINUX*, and GRUB_DISABLE_LINUX_UUID=true -> false when uuids. Options are appended only to
// GRUB_CMDLINE_LINUX: not to GRUB_CMDLINE_LINUX_DEFAULT or GRUB_CMDLINE_XEN*.
std::string rewrite_default_grub(std::string_view text, const CmdlineEdit& edit, bool uuids);
// GRUB_DEFAULT becomes value (added when absent) unless it is "saved".
std::string set_default_grub_default(std::string_view text, const std::string& value);

}  // namespace vdkit::fixups
