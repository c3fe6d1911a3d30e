// What a boot loader config declares, whichever loader wrote it: its entries and its default.
#pragma once

#include <string>
#include <vector>

namespace vdkit::fixups {

// One level of a grub2 menu path: a submenu, or the entry itself.
struct MenuStep {
  int index = 0;      // position among that level's menuentries and submenus
  std::string title;  // as written, quotes removed
  std::string id;     // --id X or $menuentry_id_option 'X'; "" when none
};

// A boot menu entry as a boot loader config declares it.
struct BootEntry {
  std::string title;
  std::string kernel;  // path as written (for grub legacy Xen entries: the dom0/domU kernel, not xen.gz)
  std::string initrd;
  std::string cmdline;
  std::string hypervisor;  // grub legacy / grub2 Xen entries: xen.gz path
  // grub2: the menuentry id; BLS: the entry's file name without ".conf" (what saved_entry names). "" when none.
  std::string id;
  std::string version;              // BLS: the version line
  std::vector<MenuStep> menu_path;  // grub2: the enclosing submenus, outermost first, then the entry itself
};
struct BootMenu {
  std::vector<BootEntry> entries;
  std::string default_value;  // as written ("0", "saved", a label or title, grub2 "${saved_entry}")
  int default_index = -1;     // resolved index into entries, -1 if unknown
  // grub2: the default is "${saved_entry}" (GRUB_DEFAULT=saved), so it lives in grubenv, not in grub.cfg.
  bool saved_default = false;
};

}  // namespace vdkit::fixups
