// Pure parsers and rewriters for guest config files, one per style: string in, string out, idempotent, total.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups {

// Every rewriter here keeps what it does not understand byte for byte
// (comments, ordering, whitespace, line endings), returns its input unchanged
// when there is nothing to do, and gives the same result when run on its own
// output. They accept any bytes (issue 7 fuzzes them).

// A device name like /dev/xvda1: prefix "xvd", disk index 0 ("a"), partition 1.
// partition is 0 for a whole disk ("/dev/xvde").
struct DeviceName {
  std::string prefix;  // "xvd", "sd", "hd", "vd"
  int disk = 0;        // a=0, b=1, ..., z=25, aa=26, ...
  int partition = 0;
};
// Parses /dev/{xvd,sd,hd,vd}<letters>[<number>]; nullopt for anything else.
std::optional<DeviceName> parse_device_name(std::string_view s);
// "a" for 0, "aa" for 26.
std::string disk_letters(int disk);

// Maps a device reference (as written in the guest) to what replaces it, or nullopt to keep it.
using DeviceMapFn = std::function<std::optional<std::string>(std::string_view device)>;

// Splits text into lines, each keeping its terminator ("\n" or "\r\n" stays part of the line).
std::vector<std::string_view> split_lines_keep(std::string_view text);

// /etc/fstab: the first field (device) of each entry.
std::string rewrite_fstab(std::string_view text, const DeviceMapFn& map);
// /etc/crypttab: the second field (encrypted device) of each entry.
std::string rewrite_crypttab(std::string_view text, const DeviceMapFn& map);

struct FstabEntry {
  std::string device, mount_point, type, options;
};
std::vector<FstabEntry> parse_fstab(std::string_view text);

// What to change on a kernel command line: root= and resume= through map,
// console=xvc0 / console=hvc0 to console=ttyS0 when fix_console, and the
// options in append ("net.ifnames=0") added at the end when the line sets
// nothing for their key (net.ifnames=1 is the guest's choice and stays).
struct CmdlineEdit {
  DeviceMapFn map;
  bool fix_console = true;
  std::vector<std::string> append;
};
// One kernel command line (tokens separated by blanks or quotes). Appended
// options go before any trailing blanks.
std::string rewrite_cmdline(std::string_view cmdline, const CmdlineEdit& edit);
// Whether a command line sets key (key=anything, or the bare key).
bool cmdline_has_key(std::string_view cmdline, std::string_view key);

// Boot loader configs: only the command-line parts are touched. Options are
// appended only to Linux command lines: not to a Xen hypervisor's (grub legacy
// `kernel /xen.gz`), an initrd module's, a syslinux mboot.c32 APPEND (" --- "),
// GRUB_CMDLINE_LINUX_DEFAULT/GRUB_CMDLINE_XEN*, or a BLS options line that
// takes $kernelopts from grubenv (rewrite_grubenv appends there).
std::string rewrite_grub_legacy(std::string_view text, const CmdlineEdit& edit);  // kernel/module lines
std::string rewrite_grub2_cfg(std::string_view text, const CmdlineEdit& edit);    // linux*/xen_module lines
// /etc/default/grub: GRUB_CMDLINE_LINUX*, and GRUB_DISABLE_LINUX_UUID=true -> false when uuids.
std::string rewrite_default_grub(std::string_view text, const CmdlineEdit& edit, bool uuids);
std::string rewrite_bls_entry(std::string_view text, const CmdlineEdit& edit);  // options lines
// /boot/grub2/grubenv: kernelopts=; keeps the file's 1024-byte '#' padding.
std::string rewrite_grubenv(std::string_view text, const CmdlineEdit& edit);
std::string rewrite_syslinux(std::string_view text, const CmdlineEdit& edit);  // APPEND lines

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
BootMenu parse_grub_legacy(std::string_view text);
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
// /etc/default/grub: GRUB_DEFAULT becomes value (added when absent) unless it is "saved".
std::string set_default_grub_default(std::string_view text, const std::string& value);
// grubenv: sets (or adds) key=value, keeping a 1024-byte '#'-padded block exactly 1024 bytes. Returns nullopt
// when the block has no room for it.
std::optional<std::string> set_grubenv_var(std::string_view text, std::string_view key, std::string_view value);
// A grubenv variable's value (grub-editenv's escapes undone), nullopt when unset.
std::optional<std::string> grubenv_var(std::string_view text, std::string_view key);
// rpm's version comparison (what grub's blscfg sorts entries by): digit runs compare as numbers, letters as
// strings, '~' sorts before anything. <0, 0, >0.
int rpm_vercmp(std::string_view a, std::string_view b);
BootEntry parse_bls_entry(std::string_view text);
BootMenu parse_syslinux(std::string_view text);
// Sets grub legacy's default (index into entries); adds a default line if none.
std::string set_grub_legacy_default(std::string_view text, int index);
// Sets syslinux's DEFAULT label.
std::string set_syslinux_default(std::string_view text, const std::string& label);
// syslinux LABEL names, in order (entries of parse_syslinux carry them as title).

// KEY=VALUE files (os-release, lsb-release, ifcfg, /etc/default/grub): value with shell quotes removed.
std::optional<std::string> shell_var(std::string_view text, std::string_view key);

// Network configs: static -> DHCP, pinned MAC addresses dropped.
std::string rewrite_ifcfg(std::string_view text);
std::string rewrite_interfaces(std::string_view text);
// name_glob ("en*"): when the file configures exactly one ethernet, keyed by a predictable name (ens192) and matched
// by nothing else once the MAC is gone, it gains `match: {name: GLOB}` so the NIC KVM names ens3/enp1s0 takes it.
std::string rewrite_netplan(std::string_view text, const std::string& name_glob = "");
std::string rewrite_nm_keyfile(std::string_view text);
// Route files of an interface that rewrite_ifcfg turned from static to DHCP: SUSE's /etc/sysconfig/network/routes and
// ifroute-IFACE (DEST GATEWAY NETMASK IFACE), RHEL's route-IFACE (ip route arguments). Default routes for one of
// ifaces (the file's and DEVICE's names), or for no named interface, are commented out: the old gateway is not in the
// new cloud's network, and a second default route through it would break the one DHCP gives. Other routes stay.
std::string comment_out_default_routes(std::string_view text, const std::vector<std::string>& ifaces);

// What a network config says, for inspection.
struct NetSummary {
  std::vector<std::string> interfaces;
  bool is_static = false;
  bool dhcp = false;
  std::vector<std::string> macs;
  // Other names the config gives its interfaces: netplan set-name, ifcfg NAME (the connection's name).
  std::vector<std::string> names;
  // netplan interfaces matched by a name glob that takes KVM's virtio NIC (ens3 and enp1s0 both): their key is
  // only an id.
  std::vector<std::string> name_matched;
  // netplan: renderer: NetworkManager, whose netplan backend (before NM 1.14) refuses name globs.
  bool nm_renderer = false;
};
NetSummary summarize_ifcfg(std::string_view text);
NetSummary summarize_interfaces(std::string_view text);
NetSummary summarize_netplan(std::string_view text);
NetSummary summarize_nm_keyfile(std::string_view text);

// Consoles: /etc/inittab gettys on xvc0/hvc0 move to ttyS0; /etc/securetty gains ttyS0.
std::string rewrite_inittab(std::string_view text);
std::string rewrite_securetty(std::string_view text);
// The ttys inittab starts gettys on.
std::vector<std::string> inittab_getty_ttys(std::string_view text);

// udev 70-persistent-net.rules: emptied; the count of rules it held, for inspection.
std::string rewrite_persistent_net_rules(std::string_view text);
int count_udev_rules(std::string_view text);

// Every /dev/xvd*, /dev/sd*, /dev/hd* name in text (in order, repeated as found).
std::vector<std::string> find_device_names(std::string_view text);
// Every console= value on a command line.
std::vector<std::string> find_consoles(std::string_view cmdline);
// cloud-init's datasource_list values in a cloud.cfg text.
std::vector<std::string> cloud_init_datasources(std::string_view text);

}  // namespace vdkit::fixups
