// Plans the initramfs fixup: which kernels' images lack virtio, the segment for each, /boot's free space, and the
// guest config that makes its next rebuild keep the drivers.
#include "fixups/initramfs/initramfs_fixup.h"

#include <algorithm>
#include <sstream>

#include "fixups/initramfs/depmod.h"

namespace vdkit::fixups {
namespace {

std::string spaced(const std::vector<std::string>& v, const char* sep = " ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// The first word of each line that is not a comment.
std::set<std::string> first_words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream s(text);
  std::string line;
  while (std::getline(s, line)) {
    std::istringstream w(line);
    std::string word;
    if (w >> word && word[0] != '#') out.insert(word);
  }
  return out;
}

std::string with_newline(std::string t) {
  if (!t.empty() && t.back() != '\n') t += '\n';
  return t;
}

// The kernels some boot entry boots; every kernel when no boot loader was recognised.
std::set<std::string> booted_kernels(const Inspection& in) {
  std::set<std::string> out;
  for (const auto& b : in.boot_loaders)
    for (const auto& e : b.entries)
      if (e.hypervisor.empty())
        if (std::string v = kernel_version_of(e.kernel); !v.empty()) out.insert(v);
  if (in.boot_loaders.empty())
    for (const auto& k : in.kernels) out.insert(k.version);
  return out;
}

// The guest's own rebuild for that flavour, once its config names the drivers.
std::string rebuild_command(InitramfsFlavour f, const KernelInfo& k) {
  switch (f) {
    case InitramfsFlavour::kInitramfsTools: return "update-initramfs -u -k " + k.version;
    case InitramfsFlavour::kNash: return "mkinitrd -f " + k.initrd_path + " " + k.version;
    default: return "dracut -f " + k.initrd_path + " " + k.version;
  }
}

std::string summary_of(const InitramfsImageChange& c, const DriverSegment& s) {
  std::string o = "--- " + c.path + " (" + std::to_string(c.before.size()) + " bytes)\n+++ " + c.path + " (" +
                  std::to_string(c.after.size()) + " bytes: a " + std::to_string(s.segment.size()) +
                  "-byte cpio segment appended)\n";
  o += "  initramfs flavour: " + std::string(to_string(s.flavour)) + "\n";
  std::vector<std::string> names;
  for (const auto& m : s.modules) names.push_back(m.name);
  o += "  modules added for " + spaced(s.drivers) + ", in load order: " + spaced(names) + "\n";
  for (const auto& f : s.files) o += "  + " + f + "\n";
  if (!s.cmdline_drivers.empty())
    o += "  loaded by rdloaddriver= on the kernel command line (this dracut reads no config from its image)\n";
  return o;
}

}  // namespace

std::string add_initramfs_tools_modules(const std::string& text, const std::vector<std::string>& drivers) {
  std::set<std::string> have = first_words(text);
  std::string add;
  for (const auto& d : drivers)
    if (!have.count(d)) add += d + "\n";
  if (add.empty()) return text;
  return with_newline(text) + "# Added by vdkit: the virtio drivers KVM's disk needs\n" + add;
}

std::string dracut_conf_with_drivers(const std::string& text, const std::vector<std::string>& drivers) {
  bool all = true;
  for (const auto& d : drivers) all &= text.find(" " + d + " ") != std::string::npos;
  if (all && !text.empty()) return text;
  return with_newline(text) + "# Added by vdkit: keep the virtio drivers KVM's disk needs in every initramfs\n" +
         "add_drivers+=\" " + spaced(drivers) + " \"\n";
}

std::string add_scsi_hostadapter_aliases(const std::string& text, const std::vector<std::string>& drivers) {
  // RHEL 5's mkinitrd puts every module a "scsi_hostadapter*" alias names into the initrd.
  std::set<std::string> aliased, used;
  std::istringstream s(text);
  std::string line;
  while (std::getline(s, line)) {
    std::istringstream w(line);
    std::string kw, name, module;
    if (w >> kw >> name >> module && kw == "alias" && name.rfind("scsi_hostadapter", 0) == 0) {
      aliased.insert(module);
      used.insert(name);
    }
  }
  std::string add;
  int n = 0;
  for (const auto& d : drivers) {
    if (aliased.count(d)) continue;
    std::string name;
    do name = "scsi_hostadapter" + (n == 0 ? std::string() : std::to_string(n)), ++n;
    while (used.count(name));
    used.insert(name);
    add += "alias " + name + " " + d + "\n";
  }
  return add.empty() ? text : with_newline(text) + add;
}

InitramfsFixupPlan plan_initramfs(GuestFs& fs, const Inspection& in, const FixupOptions& options,
                                  const DepmodFn& depmod_arg) {
  InitramfsFixupPlan plan;
  DepmodFn depmod = depmod_arg ? depmod_arg : [](const std::string& kver, const std::map<std::string, std::string>& f) {
    return run_depmod(kver, f);
  };
  std::set<std::string> booted = booted_kernels(in);
  std::set<InitramfsFlavour> flavours;
  std::vector<std::string> all_drivers;
  for (const auto& k : in.kernels) {
    if (k.xen_only || !booted.count(k.version) || k.initrd_path.empty()) continue;
    std::vector<std::string> drivers;
    bool lacking = false;
    for (const auto& d : virtio_blk_drivers()) {
      auto st = k.drivers.find(d);
      if (st == k.drivers.end() || st->second != "module") continue;
      drivers.push_back(d);
      auto it = k.in_initrd.find(d);
      lacking |= it != k.in_initrd.end() && !it->second;
    }
    if (!lacking) continue;
    const std::string mdir = "/lib/modules/" + k.version;
    auto fail = [&](const std::string& why) {
      plan.notes.push_back({"initrd-not-extended",
                            "cannot add " + spaced(drivers) + " to " + k.initrd_path + ": " + why,
                            initrd_fix_command(fs, in.os, k)});
    };
    auto dep_text = fs.read_file(mdir + "/modules.dep", kMaxModulesDepBytes);
    if (!dep_text.ok()) {
      // No modules in the guest: the warning with the in-guest command says it all. Anything else is named.
      if (dep_text.status().code() != ENOENT) fail(mdir + "/modules.dep: " + dep_text.status().message());
      continue;
    }
    auto dep = ModulesDep::parse(*dep_text, k.version);
    if (!dep.ok()) {
      fail(mdir + "/" + dep.status().message());
      continue;
    }
    GuestKernelModules guest{k.version, std::move(*dep), [&fs, mdir](const std::string& rel) -> Result<std::string> {
                               if (!safe_module_path(rel) && rel != "modules.order" && rel != "modules.builtin" &&
                                   rel != "modules.builtin.modinfo")
                                 return Status::Error(EINVAL, "refusing the module path '" + rel + "'");
                               return fs.read_file(mdir + "/" + rel, kMaxModuleFileBytes);
                             }};
    auto image = fs.read_file(k.initrd_path);
    if (!image.ok()) {
      fail(image.status().message());
      continue;
    }
    auto seg = build_driver_segment(*image, drivers, guest, depmod);
    if (!seg.ok()) {
      fail(seg.status().message());
      continue;
    }
    if (seg->segment.empty()) continue;
    InitramfsImageChange c{k.initrd_path, k.version, std::move(*image), {}, {}};
    c.after = c.before + seg->padding + seg->segment;
    c.summary = summary_of(c, *seg);
    plan.handled_kernels.insert(k.version);
    flavours.insert(seg->flavour);
    // One option with a comma list (dracut's form, <drivername>[,<drivername>,...]): the command-line rewriter adds
    // an option only when its key is not there yet, which also keeps it idempotent.
    if (!seg->cmdline_drivers.empty() && plan.cmdline_append.empty())
      plan.cmdline_append.push_back("rdloaddriver=" + spaced(seg->cmdline_drivers, ","));
    for (const auto& d : drivers)
      if (std::find(all_drivers.begin(), all_drivers.end(), d) == all_drivers.end()) all_drivers.push_back(d);
    std::vector<std::string> names;
    for (const auto& m : seg->modules) names.push_back(m.name);
    plan.notes.push_back({"virtio-added-to-initrd",
                          k.initrd_path + " (" + to_string(seg->flavour) + ") lacked " + spaced(seg->drivers) +
                              "; vdkit appended the guest's own modules (" + spaced(names) +
                              ") and the loader's config, and set the guest's config to keep them when it rebuilds "
                              "the initramfs; rebuilding it in the guest makes a single-archive image again",
                          rebuild_command(seg->flavour, k)});
    plan.images.push_back(std::move(c));
  }
  if (plan.images.empty()) return plan;

  // /boot must hold each new image beside the old one while it is written, and the backups when asked.
  uint64_t need = kInitramfsSpareBytes, largest = 0;
  for (const auto& c : plan.images) {
    need += c.after.size() - c.before.size() + (options.backup ? c.before.size() : 0);
    largest = std::max<uint64_t>(largest, c.after.size());
  }
  need += largest;
  if (auto free = fs.free_bytes_at(plan.images.front().path); free && *free < need) {
    InitramfsFixupPlan refused;
    for (const auto& c : plan.images)
      refused.notes.push_back({"initrd-no-space",
                               "cannot add the virtio drivers to " + c.path + ": its file system has " +
                                   std::to_string(*free) + " bytes free and the new images need " +
                                   std::to_string(need) + "; nothing was changed",
                               ""});
    return refused;
  }

  for (InitramfsFlavour f : flavours) {
    if (f == InitramfsFlavour::kInitramfsTools)
      plan.configs.push_back({"/etc/initramfs-tools/modules", [all_drivers](const std::string& t) {
                                return add_initramfs_tools_modules(t, all_drivers);
                              }});
    if (f == InitramfsFlavour::kDracut || f == InitramfsFlavour::kDracutOld)
      // dracut.conf.d where the guest has it (every dracut since 004 reads it), else the main file.
      plan.configs.push_back({fs.is_dir("/etc/dracut.conf.d") ? "/etc/dracut.conf.d/90-vdkit-virtio.conf"
                                                              : "/etc/dracut.conf",
                              [all_drivers](const std::string& t) { return dracut_conf_with_drivers(t, all_drivers); }});
    if (f == InitramfsFlavour::kNash)
      plan.configs.push_back({"/etc/modprobe.conf", [all_drivers](const std::string& t) {
                                return add_scsi_hostadapter_aliases(t, all_drivers);
                              }});
  }
  return plan;
}

}  // namespace vdkit::fixups
