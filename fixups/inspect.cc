// Inspection of a guest tree: reads the config files the fixups care about into an Inspection.
#include "fixups/inspect.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "blockcore/base/bytes.h"
#include "fixups/initramfs/reader.h"
#include "fixups/rules/bls.h"
#include "fixups/rules/cloud_init.h"
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
#include "fixups/rules/rpm_version.h"
#include "fixups/rules/shell_vars.h"
#include "fixups/rules/syslinux.h"
#include "fixups/rules/text.h"
#include "fixups/rules/udev_net_rules.h"

namespace vdkit::fixups {
namespace {

std::optional<std::string> read_small(GuestFs& fs, const std::string& path) {
  if (!fs.is_file(path)) return std::nullopt;
  auto r = fs.read_file(path, kMaxConfigBytes);
  if (!r.ok()) return std::nullopt;
  return std::move(*r);
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
using detail::lower;
using detail::starts_with;
std::string trim_blanks(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
std::string first_line(const std::string& s) {
  std::string l = s.substr(0, s.find('\n'));
  while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
  return l;
}

void detect_os(GuestFs& fs, OsInfo& os) {
  if (auto t = read_small(fs, "/etc/os-release")) {
    os.distro = lower(shell_var(*t, "ID").value_or(""));
    os.product_name = shell_var(*t, "PRETTY_NAME").value_or(shell_var(*t, "NAME").value_or(""));
    os.version = shell_var(*t, "VERSION_ID").value_or("");
    std::string like = lower(shell_var(*t, "ID_LIKE").value_or(""));
    if (os.distro == "rhel" || os.distro == "centos" || os.distro == "fedora" ||
        like.find("rhel") != std::string::npos || like.find("fedora") != std::string::npos)
      os.family = "rhel";
    else if (os.distro == "debian" || os.distro == "ubuntu" || like.find("debian") != std::string::npos)
      os.family = "debian";
    else if (like.find("suse") != std::string::npos || os.distro.find("suse") != std::string::npos)
      os.family = "suse";
  }
  if (os.distro.empty()) {
    if (auto t = read_small(fs, "/etc/lsb-release")) {
      os.distro = lower(shell_var(*t, "DISTRIB_ID").value_or(""));
      os.version = shell_var(*t, "DISTRIB_RELEASE").value_or("");
      os.product_name = shell_var(*t, "DISTRIB_DESCRIPTION").value_or("");
      if (os.distro == "ubuntu") os.family = "debian";
    }
  }
  if (os.distro.empty()) {
    for (const char* f : {"/etc/redhat-release", "/etc/centos-release", "/etc/sl-release", "/etc/system-release"}) {
      auto t = read_small(fs, f);
      if (!t) continue;
      std::string l = first_line(*t);
      os.product_name = l;
      os.family = "rhel";
      std::string ll = lower(l);
      if (ll.find("scientific") != std::string::npos)
        os.distro = "scientificlinux";
      else if (ll.find("centos") != std::string::npos)
        os.distro = "centos";
      else if (ll.find("fedora") != std::string::npos)
        os.distro = "fedora";
      else if (ll.find("red hat") != std::string::npos)
        os.distro = "rhel";
      else
        os.distro = "redhat-based";
      size_t r = ll.find("release ");
      if (r != std::string::npos) {
        std::string v = l.substr(r + 8);
        os.version = v.substr(0, v.find(' '));
      }
      break;
    }
  }
  if (os.distro.empty()) {
    if (auto t = read_small(fs, "/etc/debian_version")) {
      os.distro = "debian";
      os.family = "debian";
      os.version = first_line(*t);
      os.product_name = "Debian GNU/Linux " + os.version;
    }
  }
  if (os.distro.empty()) os.distro = "unknown";
  if (!os.version.empty() && std::isdigit(static_cast<unsigned char>(os.version[0]))) {
    os.major = 0;
    for (char c : os.version) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || os.major > 100000) break;
      os.major = os.major * 10 + (c - '0');
    }
  }
  for (const char* bin : {"/bin/sh", "/bin/bash", "/bin/ls", "/usr/bin/bash", "/sbin/init", "/bin/busybox"}) {
    if (!fs.is_file(bin)) continue;
    auto t = fs.read_file(bin, 64u << 20);
    if (!t.ok() || t->size() < 20 ||
        t->compare(0, 4,
                   "\x7f"
                   "ELF") != 0)
      continue;
    // e_machine, little-endian as on every architecture vdkit moves guests from.
    unsigned machine = load_le16(reinterpret_cast<const uint8_t*>(t->data()) + 18);
    switch (machine) {
      case 3:
        os.arch = "i386";
        break;
      case 62:
        os.arch = "x86_64";
        break;
      case 183:
        os.arch = "aarch64";
        break;
      case 40:
        os.arch = "arm";
        break;
      case 21:
        os.arch = "ppc64";
        break;
      case 22:
        os.arch = "s390x";
        break;
      default:
        os.arch = "elf-machine-" + std::to_string(machine);
    }
    break;
  }
}

std::vector<std::string> find_files(GuestFs& fs, const std::string& dir, const std::string& prefix,
                                    const std::string& suffix) {
  std::vector<std::string> out;
  for (const auto& n : fs.list_dir(dir))
    if (starts_with(n, prefix) && ends_with(n, suffix) && n.size() >= prefix.size() + suffix.size() &&
        fs.is_file(guest_join(dir, n)))
      out.push_back(guest_join(dir, n));
  return out;
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

void find_boot_loaders(GuestFs& fs, Inspection& in) {
  std::set<std::string> seen_content;
  for (const char* p : {"/boot/grub/grub.conf", "/boot/grub/menu.lst"}) {
    auto t = read_small(fs, p);
    if (!t || !seen_content.insert(*t).second) continue;  // menu.lst is usually a link to grub.conf
    BootMenu m = parse_grub_legacy(*t);
    in.boot_loaders.push_back({"grub-legacy", p, m.entries, m.default_index, m.default_value, {}, {}});
  }
  std::vector<std::string> grub2 = {"/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"};
  for (const auto& d : fs.list_dir("/boot/efi/EFI")) grub2.push_back("/boot/efi/EFI/" + d + "/grub.cfg");
  for (const auto& p : grub2) {
    auto t = read_small(fs, p);
    if (!t) continue;
    BootMenu m = parse_grub2_cfg(*t);
    BootLoader b{"grub2", p, m.entries, m.default_index, m.default_value, {}, {}};
    if (m.saved_default) {
      // GRUB_DEFAULT=saved: grub.cfg load_env's the grubenv beside it; an unset saved_entry boots the first entry.
      std::string env = guest_join(guest_dirname(p), "grubenv");
      if (auto e = read_small(fs, env)) {
        b.grubenv = env;
        b.saved_entry = grubenv_var(*e, "saved_entry").value_or("");
      }
      b.default_index = resolve_grub2_default(b.entries, b.saved_entry);
    }
    in.boot_loaders.push_back(std::move(b));
  }
  auto bls = find_bls_entries(fs);
  if (!bls.empty()) {
    BootLoader b{"bls", "/boot/loader/entries", {}, -1, {}, {}, {}};
    std::optional<std::string> kernelopts;
    for (const char* env : {"/boot/grub2/grubenv", "/boot/grub/grubenv"}) {
      auto t = read_small(fs, env);
      if (!t) continue;
      b.grubenv = env;
      b.saved_entry = grubenv_var(*t, "saved_entry").value_or("");
      kernelopts = grubenv_var(*t, "kernelopts");
      break;
    }
    b.default_value = b.saved_entry;
    for (const auto& p : bls) {
      auto t = read_small(fs, p);
      if (!t) continue;
      BootEntry e = parse_bls_entry(*t);
      // grub splits the expansion into words, so the blanks grub2-editenv leaves around it do not count.
      if (size_t pos = e.cmdline.find("$kernelopts"); pos != std::string::npos && kernelopts)
        e.cmdline.replace(pos, 11, trim_blanks(*kernelopts));
      e.id = p.substr(p.rfind('/') + 1);
      e.id.resize(e.id.size() - 5);  // ".conf"
      b.entries.push_back(e);
    }
    // saved_entry is an id, a title or a number; grub's blscfg boots the newest entry when it names none.
    b.default_index = resolve_bls_default(b.entries, b.saved_entry);
    in.boot_loaders.push_back(b);
  }
  for (const char* p : {"/boot/extlinux/extlinux.conf", "/boot/extlinux.conf", "/extlinux.conf",
                        "/boot/syslinux/syslinux.cfg", "/boot/syslinux.cfg", "/syslinux.cfg",
                        "/boot/syslinux/extlinux.conf", "/extlinux/extlinux.conf", "/syslinux/syslinux.cfg"}) {
    auto t = read_small(fs, p);
    if (!t) continue;
    BootMenu m = parse_syslinux(*t);
    std::string kind = std::string(p).find("extlinux") != std::string::npos ? "extlinux" : "syslinux";
    in.boot_loaders.push_back({kind, p, m.entries, m.default_index, m.default_value, {}, {}});
  }
  for (const auto& p : find_default_grub_files(fs))
    if (auto t = read_small(fs, p))
      for (const char* var : {"GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"})
        if (auto v = shell_var(*t, var)) in.default_grub += (in.default_grub.empty() ? "" : " ") + *v;
}

std::string driver_state_from_config(const std::string& config, const std::string& symbol) {
  for (auto l : split_lines_keep(config)) {
    std::string line(l);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line == symbol + "=y") return "builtin";
    if (line == symbol + "=m") return "module";
    if (line == "# " + symbol + " is not set") return "absent";
  }
  return "absent";
}

void inspect_kernel(GuestFs& fs, KernelInfo& k) {
  std::string cfg = "/boot/config-" + k.version;
  std::optional<std::string> config;
  if (fs.is_file(cfg)) {
    k.config_path = cfg;
    auto t = fs.read_file(cfg, kMaxConfigBytes);
    if (t.ok()) config = std::move(*t);
  }
  std::string builtin, deps;
  if (!config) {
    if (auto t = read_small(fs, "/lib/modules/" + k.version + "/modules.builtin")) builtin = *t;
    if (auto t = fs.read_file("/lib/modules/" + k.version + "/modules.dep", 64u << 20); t.ok()) deps = *t;
  }
  for (const auto& d : kVirtioDrivers) {
    std::string drv = d[0];
    if (config) {
      k.drivers[drv] = driver_state_from_config(*config, d[1]);
    } else if (!builtin.empty() || !deps.empty()) {
      std::string ko = "/" + drv + ".ko";
      if (builtin.find(ko) != std::string::npos)
        k.drivers[drv] = "builtin";
      else if (deps.find(ko) != std::string::npos)
        k.drivers[drv] = "module";
      else
        k.drivers[drv] = "absent";
    } else {
      k.drivers[drv] = "unknown";
    }
  }
  for (const std::string& p : {"/boot/initramfs-" + k.version + ".img", "/boot/initrd-" + k.version + ".img",
                               "/boot/initrd.img-" + k.version, "/boot/initrd-" + k.version}) {
    if (fs.is_file(p)) {
      k.initrd_path = p;
      break;
    }
  }
  bool any_module = false;
  for (auto& [drv, st] : k.drivers) any_module |= st == "module";
  if (!k.initrd_path.empty() && any_module) {
    auto data = fs.read_file(k.initrd_path);
    Result<std::vector<std::string>> files =
        data.ok() ? list_initramfs(*data) : Result<std::vector<std::string>>(data.status());
    if (!files.ok()) {
      k.initrd_error = files.status().message();
    } else {
      for (auto& [drv, st] : k.drivers) {
        if (st != "module") continue;
        bool found = false;
        for (const auto& f : *files) {
          std::string base = f.substr(f.rfind('/') == std::string::npos ? 0 : f.rfind('/') + 1);
          if (starts_with(base, drv + ".ko")) found = true;
        }
        k.in_initrd[drv] = found;
      }
    }
  }
  std::string base = k.version;
  bool xen = lower(base).find("xen") != std::string::npos;
  k.xen_only = xen && k.drivers["virtio_blk"] != "builtin" && k.drivers["virtio_blk"] != "module";
}

void find_kernels(GuestFs& fs, Inspection& in) {
  for (const auto& n : fs.list_dir("/boot")) {
    std::string version;
    if (starts_with(n, "vmlinuz-"))
      version = n.substr(8);
    else if (starts_with(n, "vmlinux-"))
      version = n.substr(8);
    else
      continue;
    if (version.empty() || ends_with(version, ".hmac") || !fs.is_file("/boot/" + n)) continue;
    KernelInfo k;
    k.version = version;
    k.path = "/boot/" + n;
    inspect_kernel(fs, k);
    in.kernels.push_back(std::move(k));
  }
}

void find_network(GuestFs& fs, Inspection& in) {
  for (const auto& p : find_ifcfg_files(fs)) {
    auto t = read_small(fs, p);
    if (!t) continue;
    NetSummary s = summarize_ifcfg(*t);
    // SUSE names the interface only in the file name (no DEVICE=).
    if (s.interfaces.empty()) s.interfaces.push_back(p.substr(p.rfind("ifcfg-") + 6));
    in.network.push_back({p, "ifcfg", s});
  }
  if (auto t = read_small(fs, "/etc/network/interfaces"))
    in.network.push_back({"/etc/network/interfaces", "interfaces", summarize_interfaces(*t)});
  for (const auto& p : find_files(fs, "/etc/network/interfaces.d", "", ""))
    if (auto t = read_small(fs, p)) in.network.push_back({p, "interfaces", summarize_interfaces(*t)});
  for (const auto& p : find_netplan_files(fs))
    if (auto t = read_small(fs, p)) in.network.push_back({p, "netplan", summarize_netplan(*t)});
  for (const auto& p : find_nm_keyfiles(fs))
    if (auto t = read_small(fs, p)) in.network.push_back({p, "networkmanager", summarize_nm_keyfile(*t)});
  const std::string rules = "/etc/udev/rules.d/70-persistent-net.rules";
  if (auto t = read_small(fs, rules)) {
    in.persistent_net_rules = rules;
    in.persistent_net_rule_count = count_udev_rules(*t);
  }
  for (const char* g : {"/lib/udev/rules.d/75-persistent-net-generator.rules",
                        "/usr/lib/udev/rules.d/75-persistent-net-generator.rules",
                        "/etc/udev/rules.d/75-persistent-net-generator.rules"})
    if (fs.is_file(g)) {
      in.persistent_net_generator = g;
      break;
    }
}

// A rule or .link file in /etc that masks the packaged one of the same name: a link to /dev/null (not a regular
// file here, since /dev/null is not one in the guest tree) or an empty file.
bool masked(GuestFs& fs, const std::string& dir, const std::string& name) {
  auto names = fs.list_dir(dir);
  if (std::find(names.begin(), names.end(), name) == names.end()) return false;
  std::string p = guest_join(dir, name);
  if (!fs.is_file(p)) return !fs.is_dir(p);
  auto t = read_small(fs, p);
  return t && t->find_first_not_of(" \t\r\n") == std::string::npos;
}

void find_nic_naming(GuestFs& fs, Inspection& in) {
  in.biosdevname = fs.is_file("/sbin/biosdevname") || fs.is_file("/usr/sbin/biosdevname");
  for (const char* name : {"80-net-setup-link.rules", "80-net-name-slot.rules"})
    for (const char* dir : {"/lib/udev/rules.d", "/usr/lib/udev/rules.d"}) {
      std::string p = guest_join(dir, name);
      if (!in.nic_naming_rule.empty() || !fs.is_file(p)) continue;
      in.nic_naming_rule = p;
      if (masked(fs, "/etc/udev/rules.d", name)) in.nic_names_disabled_by = guest_join("/etc/udev/rules.d", name);
    }
  if (in.nic_naming_rule.empty() || !in.nic_names_disabled_by.empty()) return;
  if (masked(fs, "/etc/systemd/network", "99-default.link")) {
    in.nic_names_disabled_by = "/etc/systemd/network/99-default.link";
    return;
  }
  // Naming is off only when every command line a boot can take says so: the menu entries, and the sources that
  // future entries are made from (grubenv's kernelopts, GRUB_CMDLINE_LINUX). Counting the sources too keeps a rerun
  // after an interrupted fixup, which left some lines with net.ifnames=0 and some without, finishing the job.
  bool any = false, all_off = true;
  auto line = [&](const std::string& cmdline) {
    any = true;
    if (!cmdline_has_key(cmdline, "net.ifnames")) all_off = false;
  };
  for (const auto& b : in.boot_loaders)
    for (const auto& e : b.entries) line(e.cmdline);
  for (const char* env : {"/boot/grub2/grubenv", "/boot/grub/grubenv"})
    if (auto t = read_small(fs, env))
      if (auto k = grubenv_var(*t, "kernelopts")) line(*k);
  // Each GRUB_CMDLINE_LINUX the fixup would append to (grub.d's too, which may override the main file's); one it
  // cannot edit (a value holding its own quote) would only keep the question open on every run, so it is not asked.
  const CmdlineEdit probe{nullptr, false, {"net.ifnames=0"}};
  for (const auto& p : find_default_grub_files(fs)) {
    auto t = read_small(fs, p);
    if (!t) continue;
    auto v = shell_var(*t, "GRUB_CMDLINE_LINUX");
    if (!v) continue;
    std::string both = *v + " " + shell_var(*t, "GRUB_CMDLINE_LINUX_DEFAULT").value_or("");
    if (cmdline_has_key(both, "net.ifnames") || rewrite_default_grub(*t, probe, false) != *t) line(both);
  }
  if (any && all_off)
    in.nic_names_disabled_by = "net.ifnames=0";
  else
    in.predictable_nic_names = true;
}

void find_device_refs(GuestFs& fs, Inspection& in) {
  std::vector<std::string> files = {"/etc/fstab", "/etc/crypttab", "/boot/grub2/grubenv", "/boot/grub/grubenv"};
  for (const auto& p : find_default_grub_files(fs)) files.push_back(p);
  for (const auto& b : in.boot_loaders) {
    if (b.kind == "bls") {
      for (const auto& p : find_bls_entries(fs)) files.push_back(p);
    } else {
      files.push_back(b.config);
    }
  }
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& f : files) {
    auto t = read_small(fs, f);
    if (!t) continue;
    for (const auto& d : find_device_names(*t))
      if (seen.insert({f, d}).second) in.device_references.push_back({f, d});
  }
}

}  // namespace

std::string boot_path(GuestFs& fs, const std::string& p) {
  if (p.empty()) return p;
  std::string q = p;
  // grub legacy "(hd0,0)/vmlinuz" names the partition first.
  if (q[0] == '(') {
    size_t e = q.find(')');
    q = e == std::string::npos ? q : q.substr(e + 1);
  }
  if (fs.is_file(q)) return normalize_guest_path(q);
  std::string b = guest_join("/boot", q);
  if (fs.is_file(b)) return b;
  // On Btrfs, GRUB names files from the top level: /@/boot/vmlinuz is /boot/vmlinuz of subvolume @.
  if (size_t at = q.find("/boot/"); at != std::string::npos && at > 0 && fs.is_file(q.substr(at)))
    return normalize_guest_path(q.substr(at));
  return normalize_guest_path(q);
}

int newest_bls_entry(const std::vector<BootEntry>& entries) {
  int best = -1;
  for (size_t k = 0; k < entries.size(); ++k) {
    if (best < 0) {
      best = static_cast<int>(k);
      continue;
    }
    const BootEntry& a = entries[k];
    const BootEntry& b = entries[static_cast<size_t>(best)];
    // blscfg compares the version lines (an entry with one is newer than one without), then the file names.
    int c = a.version.empty() != b.version.empty() ? (a.version.empty() ? -1 : 1) : rpm_vercmp(a.version, b.version);
    if (c == 0) c = rpm_vercmp(a.id, b.id);
    if (c > 0) best = static_cast<int>(k);
  }
  return best;
}

int resolve_bls_default(const std::vector<BootEntry>& entries, std::string_view value) {
  if (entries.empty()) return -1;
  // blscfg's menu: newest first (the order newest_bls_entry picks its best by).
  std::vector<int> menu;
  std::vector<BootEntry> rest = entries;
  std::vector<int> where(entries.size());
  for (size_t k = 0; k < where.size(); ++k) where[k] = static_cast<int>(k);
  while (!rest.empty()) {
    int n = newest_bls_entry(rest);
    menu.push_back(where[static_cast<size_t>(n)]);
    rest.erase(rest.begin() + n);
    where.erase(where.begin() + n);
  }
  if (value.empty()) return menu[0];
  for (int k : menu)
    if (entries[static_cast<size_t>(k)].id == value) return k;
  for (int k : menu)
    if (entries[static_cast<size_t>(k)].title == value) return k;
  if (std::isdigit(static_cast<unsigned char>(value[0]))) {
    std::string v(value);
    char* end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 0);
    if (n < menu.size()) return menu[n];
  }
  return menu[0];
}

std::vector<std::string> find_ifcfg_files(GuestFs& fs) {
  std::vector<std::string> out;
  // Red Hat's folder, then SUSE's.
  for (const char* dir : {"/etc/sysconfig/network-scripts", "/etc/sysconfig/network"})
    for (const auto& p : find_files(fs, dir, "ifcfg-", ""))
      if (!ends_with(p, "ifcfg-lo") && p.find('~') == std::string::npos && !ends_with(p, ".bak") &&
          !ends_with(p, ".orig") && !ends_with(p, ".template"))
        out.push_back(p);
  return out;
}

std::vector<std::string> find_netplan_files(GuestFs& fs) {
  std::vector<std::string> out;
  for (const char* d : {"/etc/netplan", "/run/netplan", "/lib/netplan"})
    for (const auto& p : find_files(fs, d, "", ".yaml")) out.push_back(p);
  return out;
}

std::vector<std::string> find_nm_keyfiles(GuestFs& fs) {
  std::vector<std::string> out;
  for (const auto& p : find_files(fs, "/etc/NetworkManager/system-connections", "", "")) out.push_back(p);
  return out;
}

std::vector<std::string> find_bls_entries(GuestFs& fs) { return find_files(fs, "/boot/loader/entries", "", ".conf"); }

std::vector<std::string> find_default_grub_files(GuestFs& fs) {
  std::vector<std::string> out;
  if (fs.is_file("/etc/default/grub")) out.push_back("/etc/default/grub");
  auto d = find_files(fs, "/etc/default/grub.d", "", ".cfg");
  std::sort(d.begin(), d.end());
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

std::vector<std::string> eth_interfaces(const Inspection& in) {
  auto is_eth = [](const std::string& n) {
    return n.size() > 3 && starts_with(n, "eth") &&
           std::all_of(n.begin() + 3, n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  };
  std::vector<std::string> out;
  for (const auto& n : in.network) {
    for (const auto& i : n.summary.interfaces)
      if (is_eth(i)) add_unique(out, i);
    for (const auto& i : n.summary.names)
      if (is_eth(i)) add_unique(out, i);
    if (n.style == "ifcfg" && n.path.find("ifcfg-") != std::string::npos) {
      std::string f = n.path.substr(n.path.rfind("ifcfg-") + 6);
      if (is_eth(f)) add_unique(out, f);
    }
  }
  return out;
}

std::string kernel_version_of(const std::string& path) {
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  for (const char* p : {"vmlinuz-", "vmlinux-"})
    if (base.rfind(p, 0) == 0) return base.substr(8);
  return {};
}

std::string initrd_fix_command(GuestFs& fs, const OsInfo& os, const KernelInfo& k) {
  std::string initrd = k.initrd_path;
  bool dracut = fs.is_file("/usr/bin/dracut") || fs.is_file("/sbin/dracut") || fs.is_file("/usr/sbin/dracut");
  bool update_initramfs = fs.is_file("/usr/sbin/update-initramfs") || fs.is_file("/sbin/update-initramfs");
  bool mkinitrd = fs.is_file("/sbin/mkinitrd") || fs.is_file("/usr/sbin/mkinitrd");
  if (!dracut && !update_initramfs && !mkinitrd) {
    if (os.family == "debian")
      update_initramfs = true;
    else if (os.family == "rhel" && os.major > 0 && os.major < 6)
      mkinitrd = true;
    else
      dracut = true;
  }
  // Only the drivers this kernel builds as modules can be added to its initrd.
  std::vector<std::string> mods;
  for (const char* d : {"virtio_blk", "virtio_pci", "virtio_scsi"}) {
    auto it = k.drivers.find(d);
    if (it != k.drivers.end() && it->second == "module") mods.push_back(d);
  }
  std::string spaced, lines, withs;
  for (const auto& m : mods) {
    spaced += (spaced.empty() ? "" : " ") + m;
    lines += m + "\\n";
    withs += " --with=" + m;
  }
  if (update_initramfs)
    return "printf '" + lines + "' >> /etc/initramfs-tools/modules && update-initramfs -u -k " + k.version;
  if (dracut)
    return "dracut -f --add-drivers \"" + spaced + "\" " +
           (initrd.empty() ? "/boot/initramfs-" + k.version + ".img" : initrd) + " " + k.version;
  return "mkinitrd -f" + withs + " " + (initrd.empty() ? "/boot/initrd-" + k.version + ".img" : initrd) + " " +
         k.version;
}

Inspection inspect_guest(GuestFs& fs, const std::vector<FsInfo>& filesystems) {
  Inspection in;
  in.filesystems = filesystems;
  if (auto t = read_small(fs, "/etc/fstab"))
    in.fstab = parse_fstab(*t);
  else
    in.notes.push_back("no /etc/fstab");
  if (auto t = read_small(fs, "/etc/crypttab")) {
    for (auto& e : parse_fstab(*t)) in.crypttab.push_back({e.mount_point, e.device, e.type, e.options});
  }
  detect_os(fs, in.os);
  find_boot_loaders(fs, in);
  find_kernels(fs, in);
  if (in.os.arch.empty()) {
    for (const auto& k : in.kernels) {
      for (const char* a : {"x86_64", "i686", "i586", "i386", "aarch64"})
        if (k.version.find(a) != std::string::npos) in.os.arch = a;
    }
  }
  find_network(fs, in);
  find_nic_naming(fs, in);
  for (const auto& b : in.boot_loaders)
    for (const auto& e : b.entries)
      for (const auto& c : find_consoles(e.cmdline)) add_unique(in.consoles, c);
  for (const auto& c : find_consoles(in.default_grub)) add_unique(in.consoles, c);
  if (auto t = read_small(fs, "/etc/inittab")) in.inittab_ttys = inittab_getty_ttys(*t);
  if (auto t = read_small(fs, "/etc/securetty")) {
    for (auto l : split_lines_keep(*t)) {
      std::string s(l);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
      if (!s.empty() && s[0] != '#') in.securetty.push_back(s);
    }
  }
  in.cloud_init = fs.is_file("/usr/bin/cloud-init") || fs.is_file("/etc/cloud/cloud.cfg");
  std::vector<std::string> cfgs = {"/etc/cloud/cloud.cfg"};
  for (const auto& p : find_files(fs, "/etc/cloud/cloud.cfg.d", "", ".cfg")) cfgs.push_back(p);
  for (const auto& p : cfgs)
    if (auto t = read_small(fs, p))
      for (const auto& d : cloud_init_datasources(*t)) add_unique(in.cloud_init_datasources, d);
  find_device_refs(fs, in);
  return in;
}

}  // namespace vdkit::fixups
