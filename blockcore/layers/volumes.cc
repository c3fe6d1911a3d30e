// Finds PV candidates on disks and partitions, and opens LVs by their "VG/LV" names.
#include "blockcore/layers/volumes.h"

#include "blockcore/layers/partition.h"

namespace vdkit {

Result<std::vector<lvm::PvCandidate>> pv_candidates(const std::vector<GuestDisk>& disks) {
  std::vector<lvm::PvCandidate> out;
  for (size_t i = 0; i < disks.size(); ++i) {
    const GuestDisk& d = disks[i];
    auto table = read_partition_table(*d.dev);
    if (!table.ok()) return table.status().Context("'" + d.name + "'");
    if (table->empty()) {
      out.push_back({"'" + d.name + "'", static_cast<int>(i), 0, d.dev});
      continue;
    }
    for (const Partition& p : *table) {
      if (p.length == 0 || p.offset + p.length > d.dev->size()) continue;  // partition view refuses it later
      out.push_back({"'" + d.name + "' partition " + std::to_string(p.number), static_cast<int>(i), p.number,
                     std::shared_ptr<BlockDevice>(make_partition_view(d.dev, p.offset, p.length))});
    }
  }
  return out;
}

Result<lvm::ScanResult> scan_volume_groups(const std::vector<GuestDisk>& disks) {
  VDKIT_ASSIGN_OR_RETURN(auto cands, pv_candidates(disks));
  return lvm::scan(cands);
}

Result<LvName> parse_lv_name(const std::string& text) {
  std::string t = text;
  if (t.rfind("/dev/mapper/", 0) == 0) {
    // lvm2 doubles every '-' inside VG and LV names; the single '-' separates them.
    std::string rest = t.substr(12), vg, lv;
    bool in_lv = false;
    for (size_t i = 0; i < rest.size(); ++i) {
      if (rest[i] == '-') {
        if (i + 1 < rest.size() && rest[i + 1] == '-') {
          (in_lv ? lv : vg) += '-';
          ++i;
          continue;
        }
        if (in_lv) return Status::Invalid("'" + text + "' is not a /dev/mapper name of an LV (a lone '-' in the LV)");
        in_lv = true;
        continue;
      }
      (in_lv ? lv : vg) += rest[i];
    }
    if (vg.empty() || lv.empty()) return Status::Invalid("'" + text + "' is not a /dev/mapper/VG-LV name");
    return LvName{vg, lv};
  }
  if (t.rfind("/dev/", 0) == 0) t = t.substr(5);
  auto slash = t.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == t.size() || t.find('/', slash + 1) != std::string::npos)
    return Status::Invalid("'" + text + "' is not an LV name: expected VG/LV");
  return LvName{t.substr(0, slash), t.substr(slash + 1)};
}

Result<BlockDevicePtr> open_lv(const lvm::ScanResult& scan, const std::string& text) {
  VDKIT_ASSIGN_OR_RETURN(LvName n, parse_lv_name(text));
  const lvm::FoundVg* found = nullptr;
  std::string names;
  for (const auto& f : scan.vgs) {
    names += (names.empty() ? "" : ", ") + f.vg.name;
    if (f.vg.name != n.vg) continue;
    if (found)
      return Status::Invalid("two VGs are named " + n.vg + " (UUIDs " + found->vg.uuid + " and " + f.vg.uuid + ")");
    found = &f;
  }
  if (!found) {
    std::string msg = "no VG " + n.vg + " on the given disks (" + (names.empty() ? "none found" : "found: " + names) + ")";
    for (const auto& w : scan.warnings) msg += "; " + w;
    return Status::Invalid(msg);
  }
  return lvm::open_logical_volume(*found, n.lv);
}

}  // namespace vdkit
