// grub legacy's menu.lst / grub.conf: kernel command lines rewritten, the menu read, the default switched.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/boot_menu.h"
#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// kernel/module lines: only their command lines are touched. Options are appended only to Linux command lines:
// not to a Xen hypervisor's (`kernel /xen.gz`) or an initrd module's.
std::string rewrite_grub_legacy(std::string_view text, const CmdlineEdit& edit);
BootMenu parse_grub_legacy(std::string_view text);
// Sets grub legacy's default (index into entries); adds a default line if none.
std::string set_grub_legacy_default(std::string_view text, int index);

}  // namespace vdkit::fixups
