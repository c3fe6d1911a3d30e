// Fixup planning: runs each rewriter over the guest's files, and turns inspection facts into warnings with fixes.
#include "fixups/fixup.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "fixups/diff.h"
#include "fixups/initramfs/initramfs_fixup.h"
#include "fixups/rules/bls.h"
#include "fixups/rules/cmdline.h"
#include "fixups/rules/consoles.h"
#include "fixups/rules/default_grub.h"
#include "fixups/rules/device_names.h"
#include "fixups/rules/fstab.h"
#include "fixups/rules/grub2.h"
#include "fixups/rules/grub_legacy.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/ifcfg.h"
#include "fixups/rules/interfaces.h"
#include "fixups/rules/netplan.h"
#include "fixups/rules/nm_keyfile.h"
#include "fixups/rules/shell_vars.h"
#include "guestfs/probe.h"
#include "fixups/rules/syslinux.h"
#include "fixups/rules/udev_net_rules.h"

namespace vdkit::fixups {
namespace {

constexpr const char* kGeneratorMask = "/etc/udev/rules.d/75-persistent-net-generator.rules";

class Planner {
 public:
  Planner(GuestFs& fs, FixupPlan& plan) : fs_(fs), plan_(plan) {}

  // Applies f to the file's current (planned) content.
  template <typename F>
  void edit(const std::string& path, const std::string& reason, F f) {
    auto it = index_.find(path);
    std::string current;
    if (it != index_.end()) {
      current = plan_.changes[it->second].after;
    } else {
      if (!fs_.is_file(path)) return;
      auto r = fs_.read_file(path, kMaxConfigBytes);
      if (!r.ok()) {
        warn("unreadable-file", "cannot read " + path + ": " + r.status().message(), "");
        return;
      }
      current = std::move(*r);
    }
    std::string next = f(current);
    if (next == current) return;
    if (it == index_.end()) {
      index_[path] = plan_.changes.size();
      plan_.changes.push_back({path, current, next, false, {reason}, {}});
    } else {
      FileChange& c = plan_.changes[it->second];
      c.after = next;
      if (std::find(c.reasons.begin(), c.reasons.end(), reason) == c.reasons.end()) c.reasons.push_back(reason);
    }
  }

  // A whole-file replacement shown by its summary instead of a line diff (an initramfs image).
  void replace_binary(const std::string& path, std::string before, std::string after, const std::string& reason,
                      std::string summary) {
    index_[path] = plan_.changes.size();
    plan_.changes.push_back({path, std::move(before), std::move(after), false, {reason}, std::move(summary), true});
  }

  void create(const std::string& path, const std::string& content, const std::string& reason) {
    if (fs_.is_file(path) || index_.count(path)) return;
    index_[path] = plan_.changes.size();
    plan_.changes.push_back({path, "", content, true, {reason}, {}});
  }

  void warn(const std::string& code, const std::string& message, const std::string& command) {
    for (const auto& w : plan_.warnings)
      if (w.code == code && w.message == message) return;
    plan_.warnings.push_back({code, message, command});
  }

 private:
  GuestFs& fs_;
  FixupPlan& plan_;
  std::map<std::string, size_t> index_;
};

std::string cmdline_root(const std::string& cmdline) {
  std::istringstream s(cmdline);
  std::string tok;
  std::string root;
  while (s >> tok)
    if (tok.rfind("root=", 0) == 0) root = tok.substr(5);
  return root;
}

// The guest's boot disk (letter index) as it names it, or kNoDisk when no
// /dev name can be trusted to mean this disk.
constexpr int kNoDisk = -2;

bool type_fits(const std::string& fstab_type, const std::string& fs_type) {
  if (fstab_type.empty() || fstab_type == "auto") return true;
  if (fstab_type == "swap") return fs_type == "swap";
  if (fstab_type.rfind("ext", 0) == 0) return fs_type.rfind("ext", 0) == 0;
  return fstab_type == fs_type;
}

// How many disks were given: the file systems' disk numbers count them (an LV's is its first PV's disk).
int given_disk_count(const Inspection& in) {
  int given = 1;
  for (const auto& f : in.filesystems)
    if (f.lv.empty()) given = std::max(given, f.disk + 1);
  return given;
}

// skip_vd: /dev/vdX names do not count; they are KVM's own, written by an earlier run (--device-names vd, cut off
// part way) or by hand, and say nothing about the disk the old hypervisor's names mean.
int choose_boot_disk(const Inspection& in, bool skip_vd) {
  auto source_name = [&](const std::string& dev) -> std::optional<DeviceName> {
    auto d = parse_device_name(dev);
    if (d && skip_vd && d->prefix == "vd") return std::nullopt;
    return d;
  };
  for (const auto& e : in.fstab)
    if (e.mount_point == "/")
      if (auto d = source_name(e.device)) return d->disk;
  for (const auto& b : in.boot_loaders)
    if (b.default_index >= 0)
      if (auto d = source_name(cmdline_root(b.entries[static_cast<size_t>(b.default_index)].cmdline)))
        return d->disk;
  // Root is already named by UUID or LABEL (a guest fixed before, or half
  // fixed by hand). A disk whose remaining /dev names in fstab all land on
  // file systems of the right type that fstab does not name otherwise is
  // this disk; anything else (another disk's /dev/sdb1 landing on our root)
  // is left alone.
  DeviceMapper any(in.filesystems, DeviceNaming::kUuid, -1);
  // The file systems fstab names by UUID or LABEL, by place (disk, partition, LV): on several disks an offset alone
  // would match the other disks' partitions at the same offset.
  std::vector<const FsInfo*> named;
  for (const auto& e : in.fstab)
    if (!parse_device_name(e.device))
      if (const FsInfo* f = any.find(e.device)) named.push_back(f);
  auto is_named = [&named](const FsInfo& f) {
    return std::any_of(named.begin(), named.end(), [&f](const FsInfo* n) { return n->same_place(f); });
  };
  // The first source disk is disk `boot` when every /dev name in fstab lands well with that numbering. Each named
  // disk may be any of the given ones (a guest whose only /dev name left is /dev/xvdb1 on its second disk).
  std::set<int> disks, candidates;
  const int given = given_disk_count(in);
  for (const auto& e : in.fstab)
    if (auto d = source_name(e.device)) {
      disks.insert(d->disk);
      for (int k = 0; k < given && k <= d->disk; ++k) candidates.insert(d->disk - k);
    }
  for (int disk : candidates) {
    DeviceMapper m(in.filesystems, DeviceNaming::kUuid, disk);
    bool fits = true;
    for (const auto& e : in.fstab) {
      auto d = source_name(e.device);
      if (!d || d->disk != disk) continue;
      const FsInfo* f = m.find(e.device);
      if (!f || is_named(*f) || !type_fits(e.type, f->type)) fits = false;
    }
    if (fits) return disk;
  }
  if (!disks.empty()) return kNoDisk;
  if (in.fstab.empty()) {
    for (const auto& r : in.device_references)
      if (auto d = source_name(r.device)) return d->disk;
    return kNoDisk;
  }
  // fstab and the default entry name nothing by /dev (a guest fixed by hand, or a run interrupted after fixing them,
  // which left resume=/dev/xvda1 in /etc/default/grub). The remaining names are weaker evidence than fstab's (no
  // type to check them against), so only the first disk is taken, or a whole-disk name on a disk with no partition
  // table (Xen's xvde); and a crypttab name must land on something that is not a file system or swap (a LUKS
  // container reads as unknown). Anything else, a second disk's /dev/sdb1 most of all, stays unknown.
  bool partitioned = !in.filesystems.empty() && in.filesystems[0].partition != 0;
  std::vector<const DeviceReference*> refs;
  for (const auto& r : in.device_references) {
    auto d = source_name(r.device);
    if (!d || (d->partition == 0 && partitioned)) continue;  // grub's "#boot=/dev/xvda" names no file system
    disks.insert(d->disk);
    refs.push_back(&r);
  }
  if (disks.size() != 1) return kNoDisk;
  int disk = *disks.begin();
  if (disk != 0 && partitioned) return kNoDisk;
  DeviceMapper m(in.filesystems, DeviceNaming::kUuid, disk);
  for (const DeviceReference* r : refs) {
    const FsInfo* f = m.find(r->device);
    if (!f) return kNoDisk;
    if (r->path == "/etc/crypttab" && !f->type.empty()) return kNoDisk;
  }
  return disk;
}

// Whether the guest still has /dev names other than /dev/vdX: then its vd names are KVM's (see skip_vd above).
// (device_references never holds vd names; fstab entries can.)
bool names_besides_vd(const Inspection& in) {
  bool other = false;
  for (const auto& e : in.fstab)
    if (auto d = parse_device_name(e.device)) other |= d->prefix != "vd";
  for (const auto& r : in.device_references)
    if (auto d = parse_device_name(r.device)) other |= d->prefix != "vd";
  return other;
}

const KernelInfo* kernel_for(const Inspection& in, const BootEntry& e) {
  std::string v = kernel_version_of(e.kernel);
  for (const auto& k : in.kernels)
    if (k.version == v) return &k;
  return nullptr;
}

bool entry_is_xen(const Inspection& in, const BootEntry& e) {
  if (!e.hypervisor.empty()) return true;
  const KernelInfo* k = kernel_for(in, e);
  if (k) return k->xen_only;
  std::string v = kernel_version_of(e.kernel);
  return v.find("xen") != std::string::npos;
}

bool boots_on_kvm(const Inspection& in, const BootEntry& e) {
  if (entry_is_xen(in, e)) return false;
  const KernelInfo* ki = kernel_for(in, e);
  if (!ki) return false;
  const std::string& blk = ki->drivers.at("virtio_blk");
  return blk == "builtin" || blk == "module" || blk == "unknown";
}

bool is_recovery(const BootEntry& e) {
  if (e.title.find("recovery mode") != std::string::npos || e.title.find("rescue") != std::string::npos) return true;
  std::istringstream s(e.cmdline);
  std::string tok;
  while (s >> tok)
    if (tok == "single" || tok == "recovery" || tok == "S" || tok == "1") return true;
  return false;
}

// The entry to boot instead of a Xen-only default: one that boots a kernel with virtio on KVM, not a recovery
// entry when another will do; the first in menu order, or for BLS (whose menu is ordered by file name) the newest.
// -1 when none.
int kvm_entry(const Inspection& in, const BootLoader& b) {
  for (bool allow_recovery : {false, true}) {
    std::vector<BootEntry> fit;
    std::vector<int> where;
    for (size_t k = 0; k < b.entries.size(); ++k) {
      const BootEntry& e = b.entries[k];
      if (!boots_on_kvm(in, e) || (!allow_recovery && is_recovery(e))) continue;
      fit.push_back(e);
      where.push_back(static_cast<int>(k));
    }
    if (fit.empty()) continue;
    return b.kind == "bls" ? where[static_cast<size_t>(newest_bls_entry(fit))] : where[0];
  }
  return -1;
}

// The default boots a Xen kernel, and the grubenv it comes from is missing or full.
void warn_cannot_save(Planner& p, const BootLoader& b, const BootEntry& e, const std::string& command) {
  p.warn("xen-default-entry",
         b.config + ": the default entry boots a Xen kernel, and " +
             (b.grubenv.empty() ? "there is no grubenv" : b.grubenv + " has no room") + " to save another in; make \"" +
             e.title + "\" the default in the guest",
         command);
}

// Sets saved_entry in a grubenv; false when it has no room.
bool save_entry(Planner& p, const std::string& grubenv, const std::string& value) {
  bool fits = true;
  p.edit(grubenv, "default kernel", [&](const std::string& t) {
    auto r = set_grubenv_var(t, "saved_entry", value);
    fits = r.has_value();
    return r.value_or(t);
  });
  return fits;
}

// Makes entry k of a grub2 menu its default, on both sides: grub.cfg's literal default or the grubenv beside it
// (a "${saved_entry}" default), and /etc/default/grub so the next update-grub writes the same. The two may
// disagree (grub.cfg written by hand or before GRUB_DEFAULT changed): with GRUB_DEFAULT=saved the next grub.cfg
// reads grubenv, so saved_entry is set too; with a literal GRUB_DEFAULT it becomes this entry.
void switch_grub2_default(Planner& p, GuestFs& fs, const Inspection& in, const BootLoader& b, int k) {
  std::string value = grub2_default_path(b.entries, k);
  const BootEntry& e = b.entries[static_cast<size_t>(k)];
  std::string set_default = in.os.family == "debian" ? "grub-set-default" : "grub2-set-default";
  bool default_saved = false;
  if (fs.is_file("/etc/default/grub"))
    if (auto t = fs.read_file("/etc/default/grub", 1u << 20); t.ok())
      default_saved = shell_var(*t, "GRUB_DEFAULT") == "saved";
  // grub2-set-default's side of it; set_default_grub_default leaves "saved" as it is.
  p.edit("/etc/default/grub", "default kernel",
         [&](const std::string& t) { return set_default_grub_default(t, value); });
  bool cfg_saved = b.default_value == "${saved_entry}" || b.default_value == "$saved_entry";
  if (!cfg_saved) p.edit(b.config, "default kernel", [&](const std::string& t) { return set_grub2_default(t, value); });
  if (!cfg_saved && !default_saved) return;
  std::string env = b.grubenv.empty() ? guest_join(guest_dirname(b.config), "grubenv") : b.grubenv;
  bool has_env = fs.is_file(env);
  if (has_env && save_entry(p, env, value)) return;
  if (cfg_saved) {
    warn_cannot_save(p, b, e, set_default + " '" + value + "'");
  } else {
    p.warn("xen-default-entry",
           "/etc/default/grub has GRUB_DEFAULT=saved, and " + (has_env ? env + " has no room" : "there is no " + env) +
               " to save \"" + e.title + "\" in: the next update-grub would boot the first entry again",
           set_default + " '" + value + "'");
  }
}

// Makes entry k of a BLS menu the default: saved_entry in grubenv, as grubby --set-default does.
void switch_bls_default(Planner& p, GuestFs& fs, const BootLoader& b, int k) {
  const BootEntry& e = b.entries[static_cast<size_t>(k)];
  if (b.grubenv.empty() || !save_entry(p, b.grubenv, e.id))
    warn_cannot_save(p, b, e, "grubby --set-default " + boot_path(fs, e.kernel));
}

}  // namespace

FixupPlan plan_fixups(GuestFs& fs, const Inspection& in, const FixupOptions& options) {
  FixupPlan plan;
  Planner p(fs, plan);
  plan.boot_disk = choose_boot_disk(in, names_besides_vd(in));
  DeviceMapper mapper(in.filesystems, options.naming, plan.boot_disk);
  DeviceMapFn map = mapper.fn();

  // Which disks the guest refers to, and names we cannot map. The given disks are the boot disk's letter and the
  // ones after it (xvda, xvdb, ...), in the order they were given.
  const int given = given_disk_count(in);
  auto is_given = [&](int disk) { return plan.boot_disk != kNoDisk && disk >= plan.boot_disk && disk < plan.boot_disk + given; };
  std::set<int> disks;
  for (const auto& r : in.device_references) {
    auto d = parse_device_name(r.device);
    if (!d) continue;
    bool partitioned = !in.filesystems.empty() && in.filesystems[0].partition != 0;
    // A whole-disk name on a partitioned disk (grub's "#boot=/dev/xvda") is not a file system reference, nor
    // evidence of a disk the guest uses: after a fix it was the only name left and raised "unknown-disk".
    if (d->partition == 0 && partitioned) continue;
    disks.insert(d->disk);
    if (is_given(d->disk) && !in.filesystems.empty() && !mapper.find(r.device))
      p.warn("unmapped-device", r.device + " in " + r.path + " names no file system on this disk; left as it is", "");
  }
  std::string names;
  for (int d : disks) names += (names.empty() ? "" : ", ") + disk_letters(d);
  if (plan.boot_disk == kNoDisk && !disks.empty() && !in.filesystems.empty()) {
    p.warn("unknown-disk",
           "the guest names disk(s) " + names +
               " by device name, but none of them is known to be this disk; those names are left as they are",
           "");
  } else if (std::any_of(disks.begin(), disks.end(), [&](int d) { return !is_given(d); })) {
    std::string given_names;
    for (int k = 0; k < given; ++k) given_names += (k ? ", " : "") + disk_letters(plan.boot_disk + k);
    p.warn("more-than-one-disk",
           "the guest refers to more disks (" + names + ") than were given (" + given_names +
               "); names on the others are left as they are (give every disk of the guest to map them)",
           "");
  }
  // --device-names label on a file system with no (usable) label falls back to UUID=: said once per file system.
  if (options.naming == DeviceNaming::kLabel) {
    std::set<std::pair<int, uint64_t>> told;
    for (const auto& r : in.device_references) {
      const FsInfo* f = mapper.find(r.device);
      auto m = mapper.map(r.device);
      if (!f || !m || m->rfind("UUID=", 0) != 0 || !told.insert({f->partition, f->offset}).second) continue;
      p.warn("no-label",
             "--device-names label: the " + f->type + " file system on " +
                 (f->partition ? "partition " + std::to_string(f->partition) : std::string("the whole disk")) +
                 (f->label.empty() ? " has no label" : " has a label with blanks, which fstab cannot name") +
                 ", so it is named " + *m + " instead; label it in the guest (e2label) and run again for LABEL=",
             "");
    }
  }
  if (in.filesystems.empty() && !in.device_references.empty())
    p.warn("no-partition-table",
           "the guest is a folder, so its device names cannot be mapped to file systems; they are left as they are",
           "");

  // LVM names are the same on every hypervisor: said, never rewritten. An encrypted volume is said too: what it
  // holds (its fstab, its device names) cannot be read, so nothing about it is guessed.
  for (const auto* tab : {&in.fstab, &in.crypttab})
    for (const auto& e : *tab)
      if (const FsInfo* f = mapper.find(e.device); f && !f->lv.empty() && !parse_device_name(e.device))
        p.warn("lvm-name-kept",
               e.device + " in " + (tab == &in.fstab ? "/etc/fstab" : "/etc/crypttab") + " names LVM logical volume " +
                   f->lv + ", which keeps that name on KVM; left as it is",
               "");
  for (const auto& f : in.filesystems)
    if (f.type == guestfs::kFsLuks)
      p.warn("encrypted-volume",
             (f.lv.empty() ? "partition " + std::to_string(f.partition) + " of disk " + std::to_string(f.disk)
                           : "LV " + f.lv) +
                 " is a LUKS volume: vdkit does not open it, so the file systems and device names inside it were "
                 "not checked (its own name in /etc/crypttab was)",
             "");

  // Device names.
  p.edit("/etc/fstab", "device names", [&](const std::string& t) { return rewrite_fstab(t, map); });
  p.edit("/etc/crypttab", "device names", [&](const std::string& t) { return rewrite_crypttab(t, map); });

  // Boot configs: root=, resume=, console=, and net.ifnames=0 when the guest's network configs name eth<N> but
  // systemd would name a KVM virtio NIC (a PCI device) ens3/enp1s0: with MAC matches and set-name dropped below,
  // those configs would match no NIC and the guest would come up with no network. The import guides' fix.
  CmdlineEdit ce{map, true, {}};
  std::vector<std::string> eths = eth_interfaces(in);
  if (options.network_edits() && in.predictable_nic_names && !eths.empty()) {
    ce.append.push_back("net.ifnames=0");
    if (in.biosdevname) ce.append.push_back("biosdevname=0");
  }
  // The initramfs fixup (fixups/initramfs/): planned first, since RHEL 6's dracut takes its drivers from the boot
  // entries' command lines; its config edits and images are added to the plan last, so images are written last.
  const size_t nic_opts = ce.append.size();
  InitramfsFixupPlan ip;
  if (options.initramfs) ip = plan_initramfs(fs, in, options);
  ce.append.insert(ce.append.end(), ip.cmdline_append.begin(), ip.cmdline_append.end());
  bool uuids = options.naming == DeviceNaming::kUuid;
  for (const auto& b : in.boot_loaders) {
    if (b.kind == "grub-legacy") {
      p.edit(b.config, "boot config", [&](const std::string& t) { return rewrite_grub_legacy(t, ce); });
    } else if (b.kind == "grub2") {
      p.edit(b.config, "boot config", [&](const std::string& t) { return rewrite_grub2_cfg(t, ce); });
    } else if (b.kind == "bls") {
      for (const auto& e : find_bls_entries(fs))
        p.edit(e, "boot config", [&](const std::string& t) { return rewrite_bls_entry(t, ce); });
    } else {
      p.edit(b.config, "boot config", [&](const std::string& t) { return rewrite_syslinux(t, ce); });
    }
  }
  for (const char* env : {"/boot/grub2/grubenv", "/boot/grub/grubenv"}) {
    p.edit(env, "boot config", [&](const std::string& t) {
      std::string out = rewrite_grubenv(t, ce);
      if (out == t && t.size() == 1024 && t.find("kernelopts=") != std::string::npos) {
        // Unchanged, but would the kernelopts change if the block had room?
        std::string unpadded = t.substr(0, t.find_last_not_of('#') + 1);
        if (rewrite_grubenv(unpadded, ce) != unpadded)
          p.warn("grubenv-full",
                 std::string(env) + ": the rewritten kernelopts do not fit in the 1024-byte block; root=/console= "
                                    "there are left as they are",
                 "grub2-editenv - set kernelopts=\"...\" (in the guest)");
      }
      return out;
    });
  }
  // grub.d's files are sourced after /etc/default/grub and may set GRUB_CMDLINE_LINUX over it: each takes the same
  // edit (an option appended to a "$GRUB_CMDLINE_LINUX ..." that extends the main one is there twice, harmlessly).
  for (const auto& f : find_default_grub_files(fs))
    p.edit(f, "boot config", [&](const std::string& t) { return rewrite_default_grub(t, ce, uuids); });
  if (nic_opts > 0) {
    std::string names;
    for (const auto& e : eths) names += (names.empty() ? "" : ", ") + e;
    std::string opts;
    for (size_t i = 0; i < nic_opts; ++i) opts += (opts.empty() ? "" : " ") + ce.append[i];
    auto count = [](const std::string& t) {
      size_t n = 0;
      for (size_t at = t.find("net.ifnames=0"); at != std::string::npos; at = t.find("net.ifnames=0", at + 1)) ++n;
      return n;
    };
    bool added = false;
    for (const auto& c : plan.changes) added |= count(c.after) > count(c.before);
    std::string why = "the network config names " + names + ", but " + in.nic_naming_rule +
                      " would give the virtio NIC a predictable name (ens3, enp1s0) on KVM that no config matches; ";
    if (added)
      p.warn("nic-names-pinned", why + opts + " was added to the kernel command lines so the first NIC is eth0 again",
             "");
    else  // every line that lacks it could not take it (a full grubenv, say)
      p.warn("nic-names-pinned", why + "add " + opts + " to the kernel command line in the guest",
             in.os.family == "debian" ? "add " + opts + " to GRUB_CMDLINE_LINUX in /etc/default/grub; update-grub"
                                      : "grubby --update-kernel=ALL --args=\"" + opts + "\"");
  }
  if (in.boot_loaders.empty())
    p.warn("no-boot-loader",
           "no boot loader configuration was recognised (grub legacy, grub2, BLS, syslinux/extlinux); root= and "
           "console= were not checked",
           "");

  // Xen-only kernels: boot a generic kernel by default when one is installed.
  bool any_kvm_kernel = false;
  for (const auto& k : in.kernels) {
    if (k.xen_only)
      p.warn("xen-only-kernel",
             "kernel " + k.version + " is a Xen kernel without virtio drivers; it cannot boot on KVM", "");
    else
      any_kvm_kernel = true;
  }
  if (!in.kernels.empty() && !any_kvm_kernel)
    p.warn("no-kvm-kernel", "no installed kernel can boot on KVM; install a generic kernel in the guest first",
           in.os.family == "debian" ? "apt-get install linux-image-generic" : "yum install kernel");
  for (const auto& b : in.boot_loaders) {
    if (b.default_index < 0 || static_cast<size_t>(b.default_index) >= b.entries.size()) continue;
    if (!entry_is_xen(in, b.entries[static_cast<size_t>(b.default_index)])) continue;
    int k = kvm_entry(in, b);
    if (k < 0) continue;
    const BootEntry& e = b.entries[static_cast<size_t>(k)];
    if (b.kind == "grub-legacy") {
      p.edit(b.config, "default kernel", [&](const std::string& t) { return set_grub_legacy_default(t, k); });
    } else if (b.kind == "syslinux" || b.kind == "extlinux") {
      p.edit(b.config, "default kernel", [&](const std::string& t) { return set_syslinux_default(t, e.title); });
    } else if (b.kind == "grub2") {
      switch_grub2_default(p, fs, in, b, k);
    } else {
      switch_bls_default(p, fs, b, k);
    }
  }

  // Consoles.
  p.edit("/etc/inittab", "console", [&](const std::string& t) { return rewrite_inittab(t); });
  bool xen_tty = false;
  for (const auto& t : in.securetty) xen_tty |= t == "xvc0" || t == "hvc0";
  if (xen_tty) p.edit("/etc/securetty", "console", [&](const std::string& t) { return rewrite_securetty(t); });

  // udev persistent net names.
  if (!in.persistent_net_rules.empty())
    p.edit(in.persistent_net_rules, "persistent net rules",
           [&](const std::string& t) { return rewrite_persistent_net_rules(t); });
  if (!in.persistent_net_generator.empty() && in.persistent_net_generator != kGeneratorMask &&
      fs.is_dir(guest_dirname(kGeneratorMask)))
    p.create(kGeneratorMask,
             "# Written by vdkit fixup: masks " + in.persistent_net_generator +
                 " so udev does not pin NIC names to MAC addresses.\n",
             "persistent net rules");

  // Network. A lone netplan ethernet keyed by a predictable name from the old hypervisor (ens192) is matched by
  // "en*" instead, so the virtio NIC takes it whatever KVM calls it (ens3, enp1s0): only while predictable naming
  // stays on (no net.ifnames=0 added) and no other netplan interface could take the same NIC.
  // Not under renderer: NetworkManager (in any file), whose netplan backend refuses globs on the NM of that era:
  // `netplan generate` would fail and the guest get no network at all.
  size_t netplan_ifaces = 0;
  bool nm_renderer = false;
  for (const auto& n : in.network)
    if (n.style == "netplan") {
      netplan_ifaces += n.summary.interfaces.size();
      nm_renderer |= n.summary.nm_renderer;
    }
  const std::string glob =
      in.predictable_nic_names && nic_opts == 0 && netplan_ifaces == 1 && !nm_renderer ? "en*" : "";
  if (options.network_edits()) {
    const Addressing addr = options.addressing();
    // Default routes of the interfaces about to become DHCP, written before their ifcfg: a rerun after a run cut off
    // in between still sees the interface as static. Addresses that are kept keep their routes.
    for (const auto& n : in.network) {
      if (addr != Addressing::kToDhcp || n.style != "ifcfg" || !n.summary.is_static || n.path.find("ifcfg-") == std::string::npos) continue;
      // The file's name and DEVICE's may differ (NetworkManager writes ifcfg-System_eth0 with DEVICE=eth0).
      std::string dir = guest_dirname(n.path);
      std::vector<std::string> ifaces{n.path.substr(n.path.rfind("ifcfg-") + 6)};
      for (const auto& d : n.summary.interfaces)
        if (std::find(ifaces.begin(), ifaces.end(), d) == ifaces.end()) ifaces.push_back(d);
      auto routes = [&](const std::string& t) { return comment_out_default_routes(t, ifaces); };
      for (const auto& iface : ifaces) {
        if (iface.find('/') != std::string::npos) continue;
        p.edit(guest_join(dir, "route-" + iface), "network", routes);    // RHEL
        p.edit(guest_join(dir, "ifroute-" + iface), "network", routes);  // SUSE
      }
      if (dir == "/etc/sysconfig/network") p.edit(guest_join(dir, "routes"), "network", routes);
    }
    for (const auto& n : in.network) {
      if (n.style == "ifcfg") p.edit(n.path, "network", [&](const std::string& t) { return rewrite_ifcfg(t, addr); });
      if (n.style == "interfaces")
        p.edit(n.path, "network", [&](const std::string& t) { return rewrite_interfaces(t, addr); });
      if (n.style == "netplan")
        p.edit(n.path, "network", [&](const std::string& t) { return rewrite_netplan(t, glob, addr); });
      if (n.style == "networkmanager")
        p.edit(n.path, "network", [&](const std::string& t) { return rewrite_nm_keyfile(t, addr); });
    }
  }
  // A predictable name from the source hypervisor's PCI layout (VMware's ens160/ens192/ens33, Xen HVM's enX0)
  // will not exist on KVM, where the virtio NIC is ens3/enp1s0: the config would configure no device.
  for (const auto& n : in.network) {
    // What the config says once this run's edit is in: a name matched by a glob is no longer tied to the layout.
    NetSummary now = n.summary;
    if (n.style == "netplan")
      for (const auto& c : plan.changes)
        if (c.path == n.path) now = summarize_netplan(c.after);
    std::vector<std::string> names = now.interfaces;
    names.insert(names.end(), now.names.begin(), now.names.end());
    std::string odd, matched;
    auto add = [](std::string& list, const std::string& name) {
      if (list.find(name) == std::string::npos) list += (list.empty() ? "" : ", ") + name;
    };
    for (const auto& name : names) {
      if (name.size() <= 2 || name.rfind("en", 0) != 0) continue;
      bool by_glob = std::find(now.name_matched.begin(), now.name_matched.end(), name) != now.name_matched.end();
      bool was = std::find(n.summary.name_matched.begin(), n.summary.name_matched.end(), name) !=
                 n.summary.name_matched.end();
      if (!by_glob) add(odd, name);
      if (by_glob && !was) add(matched, name);
    }
    if (!matched.empty())
      p.warn("nic-matched-by-name",
             n.path + " configured " + matched +
                 ", a name from the old hypervisor's PCI layout that the virtio NIC on KVM will not have; it now "
                 "matches name \"en*\", so the NIC takes it whatever KVM calls it (ens3, enp1s0)",
             "");
    if (odd.empty()) continue;
    p.warn("nic-name-may-change",
           n.path + " configures " + odd +
               ", a name from the old hypervisor's PCI layout; the virtio NIC on KVM gets another name (ens3, "
               "enp1s0), so this configuration may apply to no device" +
               (in.cloud_init ? " until cloud-init regenerates it at first boot in the new cloud"
                              : ": rename it in the guest after the first boot, or match it by driver"),
           in.cloud_init ? "" : "ip link   # in the guest, to see the new name");
  }

  // virtio drivers.
  for (const auto& k : in.kernels) {
    if (k.xen_only) continue;
    std::vector<std::string> absent, not_in_initrd;
    for (const auto& [drv, st] : k.drivers)
      if (st == "absent") absent.push_back(drv);
    for (const char* drv : {"virtio_blk", "virtio_pci"}) {
      auto it = k.in_initrd.find(drv);
      if (it != k.in_initrd.end() && !it->second) not_in_initrd.push_back(drv);
    }
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
      return s;
    };
    if (!absent.empty()) p.warn("virtio-missing-from-kernel", "kernel " + k.version + " lacks " + list(absent), "");
    if (!not_in_initrd.empty() && !ip.handled_kernels.count(k.version))
      p.warn("virtio-missing-from-initrd",
             "the initrd of kernel " + k.version + " (" + k.initrd_path + ") lacks " + list(not_in_initrd) +
                 "; the guest will not find its root disk on virtio",
             initrd_fix_command(fs, in.os, k));
    bool blk_module = k.drivers.count("virtio_blk") && k.drivers.at("virtio_blk") == "module";
    if (blk_module && k.initrd_path.empty())
      p.warn("no-initrd", "kernel " + k.version + " has virtio_blk as a module but no initrd was found",
             initrd_fix_command(fs, in.os, k));
    if (!k.initrd_error.empty())
      p.warn("initrd-unreadable", "cannot read the initrd of kernel " + k.version + ": " + k.initrd_error, "");
  }
  if (!in.cloud_init)
    p.warn("no-cloud-init", "cloud-init is not installed; the guest will not pick up keys or network from the cloud",
           in.os.family == "debian" ? "apt-get install cloud-init" : "yum install cloud-init");

  for (const auto& c : ip.configs) {
    if (fs.is_file(c.path))
      p.edit(c.path, "virtio drivers", c.edit);
    else if (fs.is_dir(guest_dirname(c.path)))
      p.create(c.path, c.edit(""), "virtio drivers");
    else
      p.warn("initrd-config-not-kept", "the guest has no " + guest_dirname(c.path) + ", so " + c.path +
             " was not written: add the virtio drivers to its initramfs config before it rebuilds the image", "");
  }
  for (const auto& n : ip.notes) p.warn(n.code, n.message, n.command);
  for (auto& c : ip.images) p.replace_binary(c.path, std::move(c.before), std::move(c.after), "virtio drivers", c.summary);

  for (auto& c : plan.changes)
    if (!c.binary) c.diff = unified_diff(c.path, c.before, c.after);
  return plan;
}

Status apply_fixups(GuestFs& fs, const FixupPlan& plan, const FixupOptions& options) {
  for (const auto& c : plan.changes) {
    if (options.backup && !c.created) {
      std::string b = c.path + kBackupSuffix;
      if (!fs.is_file(b)) VDKIT_RETURN_IF_ERROR(fs.write_file(b, c.before).Context("writing backup " + b));
    }
    VDKIT_RETURN_IF_ERROR(fs.write_file(c.path, c.after).Context("writing " + c.path));
  }
  return Status::Ok();
}

nlohmann::json to_json(const FixupPlan& plan) {
  nlohmann::json j;
  nlohmann::json cs = nlohmann::json::array();
  for (const auto& c : plan.changes) {
    nlohmann::json x = {{"path", c.path}, {"created", c.created}, {"reasons", c.reasons}, {"diff", c.diff}};
    if (c.binary) x["binary"] = true;  // diff is a summary
    cs.push_back(x);
  }
  j["changes"] = cs;
  nlohmann::json ws = nlohmann::json::array();
  for (const auto& w : plan.warnings) {
    nlohmann::json x = {{"code", w.code}, {"message", w.message}};
    if (!w.command.empty()) x["command"] = w.command;
    ws.push_back(x);
  }
  j["warnings"] = ws;
  if (plan.boot_disk >= 0) j["boot-disk"] = disk_letters(plan.boot_disk);
  j["journals"] = to_json(plan.journals);
  return j;
}

std::string to_human(const FixupPlan& plan) {
  std::string o = to_human(plan.journals);
  for (const auto& c : plan.changes) o += c.diff;
  if (plan.changes.empty()) o += "Nothing to change.\n";
  for (const auto& w : plan.warnings) {
    o += "warning: " + w.message + " [" + w.code + "]\n";
    if (!w.command.empty()) o += "  fix in the guest: " + w.command + "\n";
  }
  return o;
}

}  // namespace vdkit::fixups
