// Reports what the LVM scan found, for people and for scripts, from one walk over the VGs.
#include "fixups/volume_report.h"

#include <set>

#include "blockcore/base/units.h"

namespace vdkit {

namespace {

// The PVs an LV's segments use, by UUID, in first-use order.
std::vector<size_t> lv_pvs(const lvm::LogicalVolume& lv) {
  std::vector<size_t> out;
  for (const auto& s : lv.segments)
    for (const auto& st : s.stripes)
      if (std::find(out.begin(), out.end(), st.pv) == out.end()) out.push_back(st.pv);
  return out;
}

uint64_t unused_bytes(const lvm::VolumeGroup& vg, size_t pv) {
  uint64_t n = 0;
  for (const auto& r : lvm::unused_extents(vg, pv)) n += r.length;
  return n;
}

}  // namespace

nlohmann::json volume_groups_json(const lvm::ScanResult& scan) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& f : scan.vgs) {
    const lvm::VolumeGroup& vg = f.vg;
    const uint64_t eb = vg.extent_size * 512;
    nlohmann::json j{{"name", vg.name}, {"uuid", vg.uuid}, {"seqno", vg.seqno}, {"extent-size", eb},
                     {"metadata-from", f.metadata_from}};
    j["pvs"] = nlohmann::json::array();
    for (size_t i = 0; i < vg.pvs.size(); ++i) {
      const auto& pv = vg.pvs[i];
      nlohmann::json p{{"name", pv.name}, {"uuid", pv.uuid}, {"pe-start", pv.pe_start * 512},
                       {"pe-count", pv.pe_count}, {"unused-bytes", unused_bytes(vg, i)}};
      p["found-on"] = f.pv_devices[i] ? nlohmann::json(f.pv_devices[i]->name) : nlohmann::json(nullptr);
      if (f.pv_devices[i]) {
        p["disk-index"] = f.pv_devices[i]->disk_index;
        p["partition"] = f.pv_devices[i]->partition;
      }
      j["pvs"].push_back(std::move(p));
    }
    j["lvs"] = nlohmann::json::array();
    for (const auto& lv : vg.lvs) {
      nlohmann::json l{{"name", lv.name}, {"uuid", lv.uuid}, {"size", lv.extent_count * eb}, {"type", lv.type()},
                       {"visible", lv.visible}};
      l["segments"] = nlohmann::json::array();
      for (const auto& s : lv.segments) {
        nlohmann::json sj{{"start-extent", s.start_extent}, {"extent-count", s.extent_count}, {"type", s.type}};
        if (s.stripes.size() > 1) sj["stripe-size"] = s.stripe_size * 512;
        sj["stripes"] = nlohmann::json::array();
        for (const auto& st : s.stripes) sj["stripes"].push_back({{"pv", vg.pvs[st.pv].uuid}, {"start-extent", st.start_extent}});
        l["segments"].push_back(std::move(sj));
      }
      l["pvs"] = nlohmann::json::array();
      for (size_t p : lv_pvs(lv)) l["pvs"].push_back(vg.pvs[p].uuid);
      // Refused now (unmapped type, bad segments) or when opened (a PV not among the disks).
      std::string refused = lv.refusal;
      if (refused.empty())
        for (size_t p : lv_pvs(lv))
          if (!f.pv_devices[p]) {
            refused = "PV " + vg.pvs[p].uuid + " of VG " + vg.name + " is not among the given disks";
            break;
          }
      if (!refused.empty()) l["refused"] = refused;
      j["lvs"].push_back(std::move(l));
    }
    arr.push_back(std::move(j));
  }
  return arr;
}

std::string volume_groups_text(const lvm::ScanResult& scan, const std::string& in) {
  std::string out;
  nlohmann::json all = volume_groups_json(scan);
  for (const auto& vg : all) {
    out += in + "VG " + vg["name"].get<std::string>() + " (uuid " + vg["uuid"].get<std::string>() + ", seqno " +
           std::to_string(vg["seqno"].get<int64_t>()) + ", extents of " + human_size(vg["extent-size"].get<uint64_t>()) +
           ")\n";
    for (const auto& pv : vg["pvs"])
      out += in + "  PV " + pv["uuid"].get<std::string>() + " on " +
             (pv["found-on"].is_null() ? std::string("(missing: not on the given disks)")
                                       : pv["found-on"].get<std::string>()) +
             ", " + std::to_string(pv["pe-count"].get<uint64_t>()) + " extents, " +
             human_size(pv["unused-bytes"].get<uint64_t>()) + " unused\n";
    for (const auto& lv : vg["lvs"]) {
      out += in + "  LV " + vg["name"].get<std::string>() + "/" + lv["name"].get<std::string>() + ": " +
             human_size(lv["size"].get<uint64_t>()) + ", " + lv["type"].get<std::string>() + ", " +
             std::to_string(lv["segments"].size()) + " segment" + (lv["segments"].size() == 1 ? "" : "s") + " on " +
             std::to_string(lv["pvs"].size()) + " PV" + (lv["pvs"].size() == 1 ? "" : "s") +
             (lv["visible"].get<bool>() ? "" : ", hidden") + "\n";
      if (lv.contains("refused")) out += in + "    refused: " + lv["refused"].get<std::string>() + "\n";
    }
  }
  for (const auto& w : scan.warnings) out += in + "warning: " + w + "\n";
  return out;
}

}  // namespace vdkit
