// syslinux / extlinux configs: APPEND lines rewritten, the LABEL menu read, the DEFAULT label set.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/boot_menu.h"
#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// APPEND lines. Options are not appended to an mboot.c32 APPEND (" --- " between Xen, Linux and the initrd).
std::string rewrite_syslinux(std::string_view text, const CmdlineEdit& edit);
// Entries carry their LABEL names as title, in order.
BootMenu parse_syslinux(std::string_view text);
// Sets syslinux's DEFAULT label.
std::string set_syslinux_default(std::string_view text, const std::string& label);

}  // namespace vdkit::fixups
