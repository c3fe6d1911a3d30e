// Turns the metadata text tree into a VolumeGroup, checking every number before it is used in arithmetic.
#include "blockcore/lvm/lvm_vg.h"

#include <algorithm>
#include <map>

#include "blockcore/base/checked.h"

namespace vdkit::lvm {

namespace {

Result<uint64_t> get_uint(const TextSection& s, const char* key, const std::string& where) {
  const TextValue* v = s.find(key);
  if (!v) return Status::Corrupt(where + " has no '" + key + "'");
  if (v->kind != TextValue::Kind::kInt || v->i < 0)
    return Status::Corrupt(where + ": '" + key + "' is not a non-negative integer");
  return static_cast<uint64_t>(v->i);
}

std::string get_string(const TextSection& s, const char* key) {
  const TextValue* v = s.find(key);
  return v && v->kind == TextValue::Kind::kString ? v->s : std::string();
}

bool has_flag(const TextSection& s, const char* key, const char* flag) {
  const TextValue* v = s.find(key);
  if (!v || v->kind != TextValue::Kind::kArray) return false;
  for (const auto& i : v->items)
    if (i.kind == TextValue::Kind::kString && i.s == flag) return true;
  return false;
}

Result<Segment> parse_segment(const TextSection& seg, const VolumeGroup& vg, const std::string& where) {
  Segment out;
  VDKIT_ASSIGN_OR_RETURN(out.start_extent, get_uint(seg, "start_extent", where));
  VDKIT_ASSIGN_OR_RETURN(out.extent_count, get_uint(seg, "extent_count", where));
  out.type = get_string(seg, "type");
  if (out.type.empty()) return Status::Corrupt(where + " has no 'type'");
  if (out.type != "striped") {  // refused later, per LV, naming the type
    for (const auto& [key, v] : seg.values) {
      if (key == "type") continue;
      if (v.kind == TextValue::Kind::kString) out.names.push_back(v.s);
      if (v.kind == TextValue::Kind::kArray)
        for (const auto& i : v.items)
          if (i.kind == TextValue::Kind::kString) out.names.push_back(i.s);
    }
    return out;
  }
  VDKIT_ASSIGN_OR_RETURN(uint64_t count, get_uint(seg, "stripe_count", where));
  if (count == 0 || count > kMaxStripes)
    return Status::Corrupt(where + ": stripe_count " + std::to_string(count) + " is not between 1 and " +
                           std::to_string(kMaxStripes));
  if (count > 1) {
    VDKIT_ASSIGN_OR_RETURN(out.stripe_size, get_uint(seg, "stripe_size", where));
  }
  const TextValue* st = seg.find("stripes");
  if (!st || st->kind != TextValue::Kind::kArray || st->items.size() != 2 * count)
    return Status::Corrupt(where + ": 'stripes' is not a list of " + std::to_string(count) + " PV name, extent pairs");
  for (size_t i = 0; i < count; ++i) {
    const TextValue& name = st->items[2 * i];
    const TextValue& ext = st->items[2 * i + 1];
    if (name.kind != TextValue::Kind::kString || ext.kind != TextValue::Kind::kInt || ext.i < 0)
      return Status::Corrupt(where + ": stripe " + std::to_string(i) + " is not a PV name and an extent");
    auto it = std::find_if(vg.pvs.begin(), vg.pvs.end(), [&](const PhysicalVolume& p) { return p.name == name.s; });
    if (it == vg.pvs.end())
      return Status::Corrupt(where + ": stripe " + std::to_string(i) + " names '" + name.s +
                             "', which is not a PV of the VG");
    out.stripes.push_back({static_cast<size_t>(it - vg.pvs.begin()), static_cast<uint64_t>(ext.i)});
  }
  return out;
}

// Why an LV whose segments parsed cannot be mapped, or "" when it can.
std::string check_lv(const LogicalVolume& lv, const VolumeGroup& vg) {
  const std::string who = "LV " + vg.name + "/" + lv.name;
  for (const Segment& s : lv.segments)
    if (s.type != "striped") return who + " has type " + s.type + ", which vdkit does not map";
  uint64_t next = 0;
  for (const Segment& s : lv.segments) {
    const std::string seg = who + " segment at extent " + std::to_string(s.start_extent);
    if (s.start_extent != next)
      return seg + (s.start_extent < next ? " overlaps the one before" : " leaves a gap after extent " +
                                                                             std::to_string(next));
    const uint64_t n = s.stripes.size();
    if (s.extent_count == 0 || s.extent_count % n != 0)
      return seg + ": extent_count " + std::to_string(s.extent_count) + " is not a multiple of its " +
             std::to_string(n) + " stripes";
    const uint64_t per_stripe = s.extent_count / n;
    if (n > 1) {
      auto area = checked_mul(per_stripe, vg.extent_size);
      if (s.stripe_size == 0 || !is_power_of_two(s.stripe_size) || !area || *area % s.stripe_size != 0)
        return seg + ": stripe_size " + std::to_string(s.stripe_size) + " does not divide its stripes";
    }
    for (const Stripe& st : s.stripes) {
      const PhysicalVolume& pv = vg.pvs[st.pv];
      auto end = checked_add(st.start_extent, per_stripe);
      if (!end || *end > pv.pe_count)
        return seg + ": extents " + std::to_string(st.start_extent) + "+" + std::to_string(per_stripe) +
               " lie past the " + std::to_string(pv.pe_count) + " extents of " + pv.name + " (" + pv.uuid + ")";
    }
    auto n2 = checked_add(next, s.extent_count);
    if (!n2) return seg + ": extent counts overflow";
    next = *n2;
  }
  return "";
}

}  // namespace

std::string LogicalVolume::type() const {
  for (const Segment& s : segments)
    if (s.type != "striped") return s.type;
  for (const Segment& s : segments)
    if (s.stripes.size() > 1) return "striped";
  return "linear";
}

const LogicalVolume* VolumeGroup::find_lv(const std::string& n) const {
  for (const auto& lv : lvs)
    if (lv.name == n) return &lv;
  return nullptr;
}

Result<VolumeGroup> parse_volume_group(const TextSection& top) {
  const TextSection* vgs = nullptr;
  for (const auto& s : top.sections) {
    if (!s.find("id") || !s.find("seqno")) continue;
    if (vgs) return Status::Corrupt("metadata text describes more than one VG ('" + vgs->name + "', '" + s.name + "')");
    vgs = &s;
  }
  if (!vgs) return Status::Corrupt("metadata text has no VG section (one with 'id' and 'seqno')");
  VolumeGroup vg;
  vg.name = vgs->name;
  const std::string where = "VG " + vg.name;
  vg.uuid = get_string(*vgs, "id");
  VDKIT_ASSIGN_OR_RETURN(uint64_t seqno, get_uint(*vgs, "seqno", where));
  vg.seqno = static_cast<int64_t>(seqno);
  VDKIT_ASSIGN_OR_RETURN(vg.extent_size, get_uint(*vgs, "extent_size", where));
  // lvm2 takes 1 KiB to 16 GiB extents (in sectors); the upper bound keeps every product below 2^64.
  if (vg.extent_size < 2 || vg.extent_size > (uint64_t{1} << 25))
    return Status::Corrupt(where + ": extent_size " + std::to_string(vg.extent_size) + " is out of range");

  if (const TextSection* pvs = vgs->section("physical_volumes")) {
    if (pvs->sections.size() > kMaxPvs)
      return Status::Corrupt(where + " has more than " + std::to_string(kMaxPvs) + " PVs");
    for (const auto& p : pvs->sections) {
      PhysicalVolume pv;
      pv.name = p.name;
      const std::string pw = where + " PV " + p.name;
      pv.uuid = get_string(p, "id");
      if (pv.uuid.empty()) return Status::Corrupt(pw + " has no 'id'");
      pv.device_hint = get_string(p, "device");
      VDKIT_ASSIGN_OR_RETURN(pv.pe_start, get_uint(p, "pe_start", pw));
      VDKIT_ASSIGN_OR_RETURN(pv.pe_count, get_uint(p, "pe_count", pw));
      if (const TextValue* ds = p.find("dev_size"); ds && ds->kind == TextValue::Kind::kInt && ds->i > 0)
        pv.dev_size = static_cast<uint64_t>(ds->i);
      auto bytes = checked_mul(pv.pe_count, vg.extent_size);
      auto end = bytes ? checked_add(*bytes, pv.pe_start) : std::nullopt;
      if (!end || !checked_mul(*end, 512))
        return Status::Corrupt(pw + ": pe_start " + std::to_string(pv.pe_start) + " + pe_count " +
                               std::to_string(pv.pe_count) + " extents overflow");
      vg.pvs.push_back(std::move(pv));
    }
  }
  if (vg.pvs.empty()) return Status::Corrupt(where + " has no physical_volumes");

  if (const TextSection* lvs = vgs->section("logical_volumes")) {
    if (lvs->sections.size() > kMaxLvs)
      return Status::Corrupt(where + " has more than " + std::to_string(kMaxLvs) + " LVs");
    for (const auto& l : lvs->sections) {
      LogicalVolume lv;
      lv.name = l.name;
      lv.uuid = get_string(l, "id");
      lv.visible = has_flag(l, "status", "VISIBLE");
      const std::string lw = where + " LV " + l.name;
      std::vector<const TextSection*> segs;
      for (const auto& s : l.sections)
        if (s.name.rfind("segment", 0) == 0) segs.push_back(&s);
      if (segs.size() > kMaxSegments)
        return Status::Corrupt(lw + " has more than " + std::to_string(kMaxSegments) + " segments");
      for (const TextSection* s : segs) {
        VDKIT_ASSIGN_OR_RETURN(Segment seg, parse_segment(*s, vg, lw + " " + s->name));
        lv.segments.push_back(std::move(seg));
      }
      // lvm2 writes segments in order; a text with them shuffled still says where each one starts.
      std::sort(lv.segments.begin(), lv.segments.end(),
                [](const Segment& a, const Segment& b) { return a.start_extent < b.start_extent; });
      for (const Segment& s : lv.segments) {
        auto c = checked_add(lv.extent_count, s.extent_count);
        if (!c || !checked_mul(*c, vg.extent_size * 512))
          return Status::Corrupt(lw + ": extent counts overflow");
        lv.extent_count = *c;
      }
      if (lv.segments.empty()) lv.refusal = "LV " + vg.name + "/" + lv.name + " has no segments";
      else lv.refusal = check_lv(lv, vg);
      vg.lvs.push_back(std::move(lv));
    }
  }
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < vg.lvs.size(); ++i) by_name.emplace(vg.lvs[i].name, i);
  for (size_t i = 0; i < vg.lvs.size(); ++i)
    for (const auto& s : vg.lvs[i].segments)
      for (const auto& n : s.names)
        if (auto it = by_name.find(n); it != by_name.end() && it->second != i) vg.lvs[it->second].read_by_other_lv = true;
  return vg;
}

}  // namespace vdkit::lvm
