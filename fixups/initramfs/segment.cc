// The driver segment: what to add to an initramfs, where its own symbolic links say it goes, and the loader hook
// of each flavour. Later files of a concatenated initramfs replace earlier ones; this relies on it only for the
// hook files it rewrites (conf/modules, /init, the module index), never for a folder or a link of the image.
#include "fixups/initramfs/segment.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "fixups/initramfs/cpio_writer.h"

namespace vdkit::fixups {
namespace {

constexpr size_t kMaxLinkTarget = 4096;

bool starts_with_sv(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The entry each name ends as once every segment is unpacked (the last one wins).
std::map<std::string_view, const CpioEntry*> final_entries(const InitramfsContents& c) {
  std::map<std::string_view, const CpioEntry*> m;
  for (const auto& e : c.entries) m[e.name] = &e;
  return m;
}

bool is_index_input(std::string_view rel) {
  return rel == "modules.order" || rel == "modules.builtin" || rel == "modules.builtin.modinfo";
}

// "usr/lib/modules/6.1.0/kernel/x.ko" -> "kernel/x.ko" for kernel 6.1.0; "" when the name is not under a
// modules/KVER folder.
std::string rel_to_kernel(std::string_view name, const std::string& kver) {
  std::string key = "modules/" + kver + "/";
  size_t at = name.find(key);
  if (at == std::string_view::npos || (at > 0 && name[at - 1] != '/')) return {};
  return std::string(name.substr(at + key.size()));
}

// The nash /init with insmod lines for `mods` (in load order) where mkinitrd would have put them: after its last
// insmod before the first mkrootdev (so "echo Creating root device." stays next to it), else just before mkrootdev.
Result<std::string> nash_init(const std::string& init, const std::vector<ModuleFile>& mods) {
  size_t root = std::string::npos, after_insmod = std::string::npos;
  for (size_t pos = 0; pos < init.size() && root == std::string::npos;) {
    size_t nl = init.find('\n', pos);
    if (nl == std::string::npos) nl = init.size();
    std::string_view line(init.data() + pos, nl - pos);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (starts_with_sv(line, "mkrootdev")) root = pos;
    if (starts_with_sv(line, "insmod ")) after_insmod = std::min(nl + 1, init.size());
    pos = nl + 1;
  }
  if (root == std::string::npos) return Status::Error(EINVAL, "the nash /init has no mkrootdev line");
  size_t at = after_insmod != std::string::npos ? after_insmod : root;
  std::string add = at > 0 && init[at - 1] != '\n' ? "\n" : "";
  for (const auto& m : mods) {
    std::string file = m.name + ".ko";
    add += "echo \"Loading " + file + " module\"\ninsmod /lib/" + file + "\n";
  }
  // The block devices the new drivers found get their nodes before the root device is made.
  add += "mkblkdevs\n";
  return init.substr(0, at) + add + init.substr(at);
}

}  // namespace

const char* to_string(InitramfsFlavour f) {
  switch (f) {
    case InitramfsFlavour::kInitramfsTools: return "initramfs-tools";
    case InitramfsFlavour::kDracut: return "dracut";
    case InitramfsFlavour::kDracutOld: return "dracut (command line only)";
    case InitramfsFlavour::kNash: return "nash (mkinitrd)";
    case InitramfsFlavour::kUnknown: break;
  }
  return "unknown";
}

InitramfsFlavour detect_flavour(const InitramfsContents& c) {
  auto last = final_entries(c);
  auto it = last.find("init");
  if (it != last.end() && it->second->kept && starts_with_sv(it->second->data, "#!/bin/nash")) return InitramfsFlavour::kNash;
  bool dracut = false;
  for (const auto& [name, e] : last) {
    // dracut writes lib/dracut/dracut-VERSION (a number: "dracut-059"; dracut-lib.sh is not one).
    for (std::string_view pre : {"lib/dracut/dracut-", "usr/lib/dracut/dracut-"})
      if (starts_with_sv(name, pre) && name.size() > pre.size() && name[pre.size()] >= '0' && name[pre.size()] <= '9')
        return InitramfsFlavour::kDracut;
    dracut |= name == "lib/dracut-lib.sh" || starts_with_sv(name, "lib/dracut/") ||
              starts_with_sv(name, "usr/lib/dracut/");
  }
  if (last.count("conf/initramfs.conf") && last.count("scripts/functions")) return InitramfsFlavour::kInitramfsTools;
  if (dracut) return InitramfsFlavour::kDracutOld;
  return InitramfsFlavour::kUnknown;
}

Result<std::string> resolve_image_path(const InitramfsContents& c, std::string_view path) {
  auto last = final_entries(c);
  std::deque<std::string> todo;
  auto push_parts = [&](std::string_view p, bool front) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find('/', start);
      if (end == std::string_view::npos) end = p.size();
      if (end > start) parts.emplace_back(p.substr(start, end - start));
      start = end + 1;
    }
    if (front)
      todo.insert(todo.begin(), parts.begin(), parts.end());
    else
      todo.insert(todo.end(), parts.begin(), parts.end());
  };
  push_parts(path, false);
  std::vector<std::string> done;
  int hops = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part == ".") continue;
    if (part == "..") {
      if (!done.empty()) done.pop_back();  // never above the image's root
      continue;
    }
    std::string here;
    for (const auto& d : done) here += d + "/";
    here += part;
    auto it = last.find(here);
    if (it != last.end() && S_ISLNK(it->second->mode)) {
      if (++hops > 40) return Status::Error(ELOOP, "initramfs: too many symbolic links resolving " + std::string(path));
      if (!it->second->kept) return Status::Error(EINVAL, "initramfs: link " + here + " was not read");
      const std::string& target = it->second->data;
      if (target.empty() || target.size() > kMaxLinkTarget)
        return Status::Corrupt("initramfs: link " + here + " has a bad target");
      if (target[0] == '/') done.clear();
      push_parts(target, true);
      continue;
    }
    done.push_back(std::move(part));
  }
  std::string out;
  for (const auto& d : done) out += (out.empty() ? "" : "/") + d;
  return out;
}

Result<DriverSegment> build_driver_segment(std::string_view image, const std::vector<std::string>& drivers,
                                           const GuestKernelModules& guest, const DepmodFn& depmod) {
  const std::string& kver = guest.kver;
  auto keep = [&](std::string_view name, uint32_t mode, uint64_t size) {
    if (S_ISLNK(mode)) return size <= kMaxLinkTarget;
    if (!S_ISREG(mode)) return false;
    if (name == "init" || name == "conf/modules") return size <= (1u << 20);
    std::string rel = rel_to_kernel(name, kver);
    return !rel.empty() && (safe_module_path(rel) || is_index_input(rel));
  };
  VDKIT_ASSIGN_OR_RETURN(InitramfsContents c, read_initramfs(image, keep));
  for (const auto& s : c.segments)
    if (!s.delimited)
      return Status::Error(ENOTSUP, "its archive at offset " + std::to_string(s.offset) + " is " + s.compression +
                                        "-compressed, whose end vdkit cannot find, so nothing can be appended after it");
  auto last = final_entries(c);
  std::set<std::string> present;
  for (const auto& [name, e] : last)
    if (S_ISREG(e->mode))
      if (std::string n = module_name(name); !n.empty()) present.insert(n);

  DriverSegment out;
  out.flavour = detect_flavour(c);
  for (const auto& d : drivers)
    if (!present.count(d)) out.drivers.push_back(d);
  if (out.drivers.empty()) return out;
  if (out.flavour == InitramfsFlavour::kUnknown)
    return Status::Error(ENOTSUP, "it was made by a tool vdkit does not recognise (not dracut, initramfs-tools or "
                                  "RHEL 5's nash), so it is left as it is");
  VDKIT_ASSIGN_OR_RETURN(out.modules,
                         guest.dep.closure(out.drivers, std::vector<std::string>(present.begin(), present.end())));

  std::map<std::string, std::string> files;  // segment path -> content, hooks included
  std::map<std::string, std::string> new_modules;  // rel -> content
  for (const auto& m : out.modules) {
    if (!safe_module_path(m.path)) return Status::Error(EINVAL, "unsafe module path " + m.path);
    auto data = guest.read(m.path);
    if (!data.ok()) return data.status().Context("reading /lib/modules/" + kver + "/" + m.path);
    new_modules[m.path] = std::move(*data);
  }

  if (out.flavour == InitramfsFlavour::kNash) {
    // nash's insmod takes a plain .ko by path; mkinitrd puts every module in /lib.
    VDKIT_ASSIGN_OR_RETURN(std::string lib, resolve_image_path(c, "lib"));
    for (const auto& m : out.modules) {
      if (m.path.size() < 3 || m.path.compare(m.path.size() - 3, 3, ".ko") != 0)
        return Status::Error(ENOTSUP, "nash cannot load the compressed module " + m.path);
      files[lib + "/" + m.name + ".ko"] = new_modules[m.path];
    }
    VDKIT_ASSIGN_OR_RETURN(std::string init, nash_init(last.at("init")->data, out.modules));
    files["init"] = std::move(init);
  } else {
    VDKIT_ASSIGN_OR_RETURN(std::string mdir, resolve_image_path(c, "lib/modules/" + kver));
    // depmod's input: the old image's modules and index inputs, with the new modules over them.
    std::map<std::string, std::string> stage;
    for (const auto& [name, e] : last) {
      if (!e->kept || !S_ISREG(e->mode)) continue;
      std::string rel = rel_to_kernel(name, kver);
      if (!rel.empty() && (safe_module_path(rel) || is_index_input(rel))) stage[rel] = e->data;
    }
    for (const char* in : {"modules.order", "modules.builtin", "modules.builtin.modinfo"})
      if (!stage.count(in))
        if (auto t = guest.read(in); t.ok()) stage[in] = std::move(*t);
    for (const auto& [rel, data] : new_modules) {
      stage[rel] = data;
      files[mdir + "/" + rel] = data;
    }
    for (const auto& [rel, data] : stage)
      if (rel.size() > 6 && rel.compare(rel.size() - 6, 6, ".ko.gz") == 0)
        return Status::Error(ENOTSUP, "gzip-compressed module " + rel + ": the host's depmod cannot read it");
    VDKIT_ASSIGN_OR_RETURN(auto index, depmod(kver, stage));
    for (auto& [name, data] : index) files[mdir + "/" + name] = std::move(data);
    if (out.flavour == InitramfsFlavour::kInitramfsTools) {
      auto it = last.find("conf/modules");
      std::string conf = it != last.end() && it->second->kept ? it->second->data : "";
      if (!conf.empty() && conf.back() != '\n') conf += '\n';
      conf += "# Added by vdkit: the virtio drivers KVM's disk needs\n";
      for (const auto& d : out.drivers) conf += d + "\n";
      VDKIT_ASSIGN_OR_RETURN(std::string conf_dir, resolve_image_path(c, "conf"));
      files[conf_dir + "/modules"] = std::move(conf);
    } else if (out.flavour == InitramfsFlavour::kDracut) {
      std::string list;
      for (const auto& d : out.drivers) list += (list.empty() ? "" : ",") + d;
      VDKIT_ASSIGN_OR_RETURN(std::string dir, resolve_image_path(c, "etc/cmdline.d"));
      files[dir + "/90-vdkit-virtio.conf"] = "rd.driver.pre=" + list + "\n";
    } else {
      out.cmdline_drivers = out.drivers;
    }
  }

  // Folders the image lacks get an entry (the kernel does not make parents); folders and links it has never do.
  CpioWriter w;
  std::set<std::string> made;
  for (const auto& [path, data] : files) {
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      std::string dir = path.substr(0, slash);
      auto it = last.find(dir);
      if (it != last.end()) {
        if (!S_ISDIR(it->second->mode))
          return Status::Error(ENOTDIR, "initramfs: " + dir + " is not a folder (resolving " + path + ")");
        continue;
      }
      if (made.insert(dir).second) {
        VDKIT_RETURN_IF_ERROR(w.add_dir(dir));
        out.files.push_back(dir + "/");
      }
    }
  }
  for (const auto& [path, data] : files) {
    uint32_t perm = path == "init" ? 0755 : 0644;
    if (auto it = last.find(path); it != last.end() && S_ISREG(it->second->mode)) perm = it->second->mode & 07777;
    VDKIT_RETURN_IF_ERROR(w.add_file(path, data, perm));
    out.files.push_back(path);
  }
  out.segment = w.finish();
  out.padding.assign((4 - image.size() % 4) % 4, '\0');
  return out;
}

}  // namespace vdkit::fixups
