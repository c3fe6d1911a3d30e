// The inspection report: every fact inspect_guest gathered, as JSON for tools and as text for people.
#include "fixups/inspect_report.h"

#include <sstream>

#include "fixups/rules/grub2.h"

namespace vdkit::fixups {

nlohmann::json to_json(const Inspection& in) {
  using nlohmann::json;
  json j;
  json fss = json::array();
  for (const auto& f : in.filesystems) {
    json x = {{"partition", f.partition}, {"offset", f.offset}, {"size", f.length},
              {"type", f.type},           {"uuid", f.uuid},     {"label", f.label}};
    if (!f.mount_point.empty()) x["mountpoint"] = f.mount_point;
    if (!f.state.empty()) x["state"] = f.state;
    if (!f.warnings.empty()) x["warnings"] = f.warnings;
    if (!f.subvolumes.empty()) {
      x["root-subvolume"] = f.subvolume;
      x["root-subvolume-reason"] = f.subvolume_reason;
      json subs = json::array();
      for (const auto& s : f.subvolumes)
        subs.push_back({{"id", s.id}, {"path", "/" + s.path}, {"default", s.is_default}, {"root", s.booted},
                        {"snapshot", s.snapshot}, {"readonly", s.readonly}});
      x["subvolumes"] = subs;
    }
    x["disk"] = f.disk;
    if (!f.lv.empty()) x["lv"] = f.lv;
    fss.push_back(x);
  }
  j["filesystems"] = fss;
  j["journals"] = to_json(in.journals);
  if (!in.volume_notes.empty()) j["volume-notes"] = in.volume_notes;
  json fst = json::array();
  for (const auto& e : in.fstab)
    fst.push_back({{"device", e.device}, {"mountpoint", e.mount_point}, {"type", e.type}, {"options", e.options}});
  j["fstab"] = fst;
  json ct = json::array();
  for (const auto& e : in.crypttab) ct.push_back({{"name", e.device}, {"device", e.mount_point}});
  j["crypttab"] = ct;
  j["os"] = {{"distro", in.os.distro},
             {"product-name", in.os.product_name},
             {"version", in.os.version},
             {"family", in.os.family},
             {"arch", in.os.arch}};
  json bl = json::array();
  for (const auto& b : in.boot_loaders) {
    json es = json::array();
    for (size_t k = 0; k < b.entries.size(); ++k) {
      const auto& e = b.entries[k];
      json x = {{"title", e.title},
                {"kernel", e.kernel},
                {"initrd", e.initrd},
                {"cmdline", e.cmdline},
                {"default", static_cast<int>(k) == b.default_index}};
      if (!e.hypervisor.empty()) x["hypervisor"] = e.hypervisor;
      if (!e.id.empty()) x["id"] = e.id;
      if (!e.version.empty()) x["version"] = e.version;
      if (b.kind == "grub2") x["menu-path"] = grub2_default_path(b.entries, static_cast<int>(k));
      es.push_back(x);
    }
    json x = {{"type", b.kind}, {"config", b.config}, {"default", b.default_value}, {"entries", es}};
    if (!b.grubenv.empty()) {
      x["grubenv"] = b.grubenv;
      x["saved-entry"] = b.saved_entry;
    }
    bl.push_back(x);
  }
  j["boot-loaders"] = bl;
  json ks = json::array();
  for (const auto& k : in.kernels) {
    json x = {{"version", k.version},
              {"path", k.path},
              {"config", k.config_path},
              {"initrd", k.initrd_path},
              {"xen-only", k.xen_only}};
    json d = json::object();
    for (const auto& [drv, st] : k.drivers) {
      json y = {{"kernel", st}};
      auto it = k.in_initrd.find(drv);
      if (it != k.in_initrd.end()) y["in-initrd"] = it->second;
      d[drv] = y;
    }
    x["virtio"] = d;
    if (!k.initrd_error.empty()) x["initrd-error"] = k.initrd_error;
    ks.push_back(x);
  }
  j["kernels"] = ks;
  json net = json::array();
  for (const auto& n : in.network)
    net.push_back({{"path", n.path},
                   {"style", n.style},
                   {"interfaces", n.summary.interfaces},
                   {"mode", n.summary.is_static ? "static"
                            : n.summary.dhcp    ? "dhcp"
                                                : "other"},
                   {"macs", n.summary.macs}});
  j["network"] = net;
  j["predictable-nic-names"] = in.predictable_nic_names;
  j["nic-naming-rule"] = in.nic_naming_rule;
  if (!in.nic_names_disabled_by.empty()) j["nic-names-disabled-by"] = in.nic_names_disabled_by;
  j["biosdevname"] = in.biosdevname;
  j["persistent-net-rules"] = {{"path", in.persistent_net_rules},
                               {"rules", in.persistent_net_rule_count},
                               {"generator", in.persistent_net_generator}};
  j["consoles"] = {{"kernel", in.consoles}, {"inittab", in.inittab_ttys}, {"securetty", in.securetty}};
  j["cloud-init"] = {{"installed", in.cloud_init}, {"datasources", in.cloud_init_datasources}};
  json refs = json::array();
  for (const auto& r : in.device_references) refs.push_back({{"file", r.path}, {"device", r.device}});
  j["device-references"] = refs;
  j["notes"] = in.notes;
  return j;
}

std::string to_human(const Inspection& in) {
  std::ostringstream o;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("-") : s;
  };
  o << "Operating system: " << (in.os.product_name.empty() ? in.os.distro : in.os.product_name) << "\n";
  o << "  distro " << in.os.distro << ", version " << (in.os.version.empty() ? "-" : in.os.version) << ", family "
    << (in.os.family.empty() ? "-" : in.os.family) << ", arch " << (in.os.arch.empty() ? "-" : in.os.arch) << "\n";
  o << "File systems:\n";
  for (const auto& f : in.filesystems)
    o << "  "
      << (!f.lv.empty() ? "LV " + f.lv
          : f.partition ? "partition " + std::to_string(f.partition)
                        : std::string("whole disk"))
      << (f.lv.empty() && f.disk ? " of disk " + std::to_string(f.disk) : std::string()) << ": "
      << (f.type.empty() ? "unknown" : f.type) << ", " << f.length << " bytes, UUID=" << (f.uuid.empty() ? "-" : f.uuid)
      << ", LABEL=" << (f.label.empty() ? "-" : f.label)
      << (f.mount_point.empty() ? "" : ", mounted at " + f.mount_point) << (f.state.empty() ? "" : "; " + f.state)
      << "\n" << [&] {
           std::string w;
           for (const auto& x : f.warnings) w += "    warning: " + x + "\n";
           return w;
         }();
  for (const auto& j : in.journals)
    o << "  " << j.where() << ": " << j.report.summary() << (j.problem.empty() ? "" : ", NOT recovered: " + j.problem)
      << "\n";
  for (const auto& f : in.filesystems) {
    if (f.subvolumes.empty()) continue;
    o << "Btrfs subvolumes on " << (f.partition ? "partition " + std::to_string(f.partition) : std::string("the whole disk"))
      << " (root: subvolume " << f.subvolume << ", " << f.subvolume_reason << "):\n";
    for (const auto& s : f.subvolumes)
      o << "  " << s.id << " /" << s.path << (s.booted ? " [root]" : "") << (s.is_default ? " [default]" : "")
        << (s.snapshot ? " [snapshot]" : "") << (s.readonly ? " [read-only]" : "") << "\n";
  }
  for (const auto& n : in.volume_notes) o << "  note: " << n << "\n";
  o << "fstab:\n";
  for (const auto& e : in.fstab) o << "  " << e.device << " on " << e.mount_point << " (" << e.type << ")\n";
  for (const auto& e : in.crypttab) o << "crypttab: " << e.device << " from " << e.mount_point << "\n";
  o << "Boot loaders:" << (in.boot_loaders.empty() ? " none found" : "") << "\n";
  for (const auto& b : in.boot_loaders) {
    o << "  " << b.kind << " (" << b.config << "), default " << (b.default_value.empty() ? "-" : b.default_value);
    if (!b.grubenv.empty() && b.saved_entry != b.default_value)
      o << " (" << b.grubenv << ": saved_entry=" << b.saved_entry << ")";
    o << "\n";
    for (size_t k = 0; k < b.entries.size(); ++k) {
      const auto& e = b.entries[k];
      o << "    " << (static_cast<int>(k) == b.default_index ? "* " : "  ") << e.title << "\n";
      if (!e.hypervisor.empty()) o << "        hypervisor: " << e.hypervisor << "\n";
      o << "        kernel: " << e.kernel << "\n        initrd: " << (e.initrd.empty() ? "-" : e.initrd)
        << "\n        cmdline: " << e.cmdline << "\n";
    }
  }
  o << "Kernels:\n";
  for (const auto& k : in.kernels) {
    o << "  " << k.version << (k.xen_only ? " (Xen-only)" : "") << "\n";
    for (const auto& [drv, st] : k.drivers) {
      o << "    " << drv << ": " << st;
      auto it = k.in_initrd.find(drv);
      if (it != k.in_initrd.end()) o << (it->second ? ", in initrd" : ", NOT in initrd");
      o << "\n";
    }
    if (!k.initrd_error.empty()) o << "    initrd unreadable: " << k.initrd_error << "\n";
  }
  o << "Network:\n";
  for (const auto& n : in.network)
    o << "  " << n.path << " (" << n.style << "): " << join(n.summary.interfaces) << ", "
      << (n.summary.is_static ? "static"
          : n.summary.dhcp    ? "dhcp"
                              : "other")
      << ", MAC " << join(n.summary.macs) << "\n";
  if (!in.persistent_net_rules.empty())
    o << "  " << in.persistent_net_rules << ": " << in.persistent_net_rule_count << " rules\n";
  o << "  predictable NIC names: "
    << (in.predictable_nic_names         ? "yes (" + in.nic_naming_rule + ")"
        : in.nic_naming_rule.empty()     ? std::string("no")
                                         : "no (disabled by " + in.nic_names_disabled_by + ")")
    << (in.biosdevname ? "; biosdevname installed" : "") << "\n";
  if (!in.persistent_net_generator.empty()) o << "  persistent-net generator: " << in.persistent_net_generator << "\n";
  o << "Consoles: kernel " << join(in.consoles) << "; inittab " << join(in.inittab_ttys) << "; securetty "
    << join(in.securetty) << "\n";
  o << "cloud-init: " << (in.cloud_init ? "installed, datasources " + join(in.cloud_init_datasources) : "not installed")
    << "\n";
  o << "Xen/VMware device names:" << (in.device_references.empty() ? " none" : "") << "\n";
  for (const auto& r : in.device_references) o << "  " << r.device << " in " << r.path << "\n";
  for (const auto& n : in.notes) o << "Note: " << n << "\n";
  return o.str();
}

}  // namespace vdkit::fixups
