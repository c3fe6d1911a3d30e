// Guest inspection: OS, boot loaders and entries, kernels and their virtio drivers, network, consoles, cloud-init.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "fixups/disk.h"
#include "fixups/guest_fs.h"
#include "fixups/journals.h"
#include "fixups/rules/boot_menu.h"
#include "fixups/rules/fstab.h"
#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// Config files are small; anything larger is not a config file inspection or the fixups can use.
inline constexpr size_t kMaxConfigBytes = 4u << 20;

// The virtio drivers a guest needs on KVM, and the kernel config symbol of each.
inline constexpr const char* kVirtioDrivers[][2] = {{"virtio_blk", "CONFIG_VIRTIO_BLK"},
                                                    {"virtio_net", "CONFIG_VIRTIO_NET"},
                                                    {"virtio_pci", "CONFIG_VIRTIO_PCI"},
                                                    {"virtio_scsi", "CONFIG_SCSI_VIRTIO"}};

struct OsInfo {
  std::string distro;        // "ubuntu", "rhel", "scientificlinux", "debian", ... ("unknown")
  std::string product_name;  // "Ubuntu 14.04.6 LTS", "Scientific Linux SL release 5.11 (Boron)"
  std::string version;       // "14.04", "5.11"
  std::string family;        // "rhel", "debian", "suse", "" when unknown
  std::string arch;          // "x86_64", "i386", ... from an ELF binary
  int major = 0;
};

// A configured boot loader and what its config declares.
struct BootLoader {
  std::string kind;    // "grub-legacy", "grub2", "bls", "syslinux", "extlinux"
  std::string config;  // guest path
  std::vector<BootEntry> entries;
  int default_index = -1;
  std::string default_value;
  // grub2 with a "${saved_entry}" default, and BLS: the grubenv the default comes from ("" when there is none),
  // and its saved_entry (unset: "").
  std::string grubenv;
  std::string saved_entry;
};

struct KernelInfo {
  std::string version;
  std::string path;          // /boot/vmlinuz-VERSION
  std::string config_path;   // "" when none
  std::string initrd_path;   // "" when none found
  std::string initrd_error;  // why the initrd could not be read
  // driver -> "builtin" | "module" | "absent" | "unknown"
  std::map<std::string, std::string> drivers;
  // driver -> found in the initrd (only for modules, when the initrd was read)
  std::map<std::string, bool> in_initrd;
  bool xen_only = false;  // a Xen kernel with no virtio block driver
};

struct NetConfig {
  std::string path;
  std::string style;  // "ifcfg", "interfaces", "netplan", "networkmanager"
  NetSummary summary;
};

struct DeviceReference {
  std::string path;    // guest file
  std::string device;  // /dev/xvda1
};

struct Inspection {
  std::vector<FsInfo> filesystems;
  std::vector<std::string> volume_notes;  // what the LVM scan said: refused LVs, skipped metadata copies
  std::vector<FstabEntry> fstab;
  std::vector<FstabEntry> crypttab;  // device, mount_point = name, type = source
  OsInfo os;
  std::vector<BootLoader> boot_loaders;
  std::string default_grub;  // GRUB_CMDLINE_LINUX and _DEFAULT of /etc/default/grub and grub.d/*.cfg, joined
  std::vector<KernelInfo> kernels;
  std::vector<NetConfig> network;
  std::string persistent_net_rules;  // path, when present
  int persistent_net_rule_count = 0;
  std::string persistent_net_generator;  // path of the generator rule, when present
  // systemd/udev names NICs by their slot (ens3, enp1s0): its 80-net-setup-link.rules (or systemd 197-208's
  // 80-net-name-slot.rules) is installed and not masked in /etc (a link to /dev/null or an empty file, or
  // /etc/systemd/network/99-default.link so masked), and not every boot command line says net.ifnames=0.
  bool predictable_nic_names = false;
  std::string nic_naming_rule;  // the rule file found ("" when none)
  std::string nic_names_disabled_by;  // with a rule found but not in effect: the mask, or "net.ifnames=0"
  bool biosdevname = false;     // /sbin/biosdevname or /usr/sbin/biosdevname is installed
  std::vector<std::string> consoles;     // console= values of every boot entry (unique)
  std::vector<std::string> inittab_ttys;
  std::vector<std::string> securetty;
  bool cloud_init = false;
  std::vector<std::string> cloud_init_datasources;
  std::vector<DeviceReference> device_references;
  std::vector<std::string> notes;  // things inspection could not read
  // Each ext file system's journal: version, state, and what was replayed (filled by fixups/run.cc).
  std::vector<FsJournal> journals;
};

// Inspects the guest tree. filesystems (may be empty for a folder) are copied in. inspect_report.h renders the result.
Inspection inspect_guest(GuestFs& fs, const std::vector<FsInfo>& filesystems);

// The entry a BLS menu boots when grubenv names none: the newest by version, as grub's blscfg sorts them.
int newest_bls_entry(const std::vector<BootEntry>& entries);
// The entry a BLS menu boots for grubenv's saved_entry, as Fedora/RHEL grub (the grub with blscfg) resolves it
// over the menu blscfg builds (newest first): an entry id (file name without .conf) first, then a title, and
// only then a number (its menu position, strtoul base 0: "0f1e...-4.18" is an id before it is 0). A value that
// names nothing, or none, boots the newest. -1 only when there are no entries.
int resolve_bls_default(const std::vector<BootEntry>& entries, std::string_view value);

// Finds the files of each config style (used by inspection and fixups).
std::vector<std::string> find_ifcfg_files(GuestFs& fs);
std::vector<std::string> find_netplan_files(GuestFs& fs);
std::vector<std::string> find_nm_keyfiles(GuestFs& fs);
std::vector<std::string> find_bls_entries(GuestFs& fs);
// /etc/default/grub, then /etc/default/grub.d/*.cfg in name order: what grub-mkconfig sources, in its order.
std::vector<std::string> find_default_grub_files(GuestFs& fs);

// Network configs' interfaces named eth<N> (a config that no longer matches anything when the kernel's names are
// replaced by predictable ones), each once, in config order.
std::vector<std::string> eth_interfaces(const Inspection& in);

// "4.18.0-1" for a boot entry's kernel "/boot/vmlinuz-4.18.0-1" ("" when it is not vmlinuz-/vmlinux-).
std::string kernel_version_of(const std::string& path);

// The guest command that puts the virtio drivers into a kernel's initrd.
std::string initrd_fix_command(GuestFs& fs, const OsInfo& os, const KernelInfo& k);

// Resolves a kernel or initrd path from a boot entry to a guest path (a
// separate /boot makes "/vmlinuz-x" mean "/boot/vmlinuz-x").
std::string boot_path(GuestFs& fs, const std::string& p);

}  // namespace vdkit::fixups
