// grub2's grub.cfg: kernel command lines rewritten, the menu (submenus included) read, the default resolved and set.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fixups/rules/boot_menu.h"
#include "fixups/rules/cmdline.h"

namespace vdkit::fixups {

// linux*/module/xen_module lines: only their command lines are touched. Options are appended only to Linux
// command lines: not to an initrd module's.
std::string rewrite_grub2_cfg(std::string_view text, const CmdlineEdit& edit);
// Entries in menu order (those inside submenus included, each with its menu_path); the default resolved as grub
// does (see resolve_grub2_default). A "${saved_entry}" default sets saved_default and resolves to -1.
BootMenu parse_grub2_cfg(std::string_view text);
// The entry grub2 boots for a default value: a '>'-separated path whose parts are each a number (position among
// that level's menuentries and submenus), a title or an id. As grub does, a part that names nothing means the
// first item, and a path ending on a submenu boots that submenu's first entry. -1 only when there are no entries.
int resolve_grub2_default(const std::vector<BootEntry>& entries, std::string_view value);
// The value that makes entries[index] grub2's default: each level's id, else its title, else (a title holding
// '>' or one that does not name it uniquely) its number. Always resolves back to index.
std::string grub2_default_path(const std::vector<BootEntry>& entries, int index);
// Sets grub2's literal default: rewrites every top-level `set default=` line of grub.cfg except those that read
// ${next_entry}; adds one at the top when there is none. A default that is ${saved_entry} is left alone.
std::string set_grub2_default(std::string_view text, const std::string& value);

}  // namespace vdkit::fixups
