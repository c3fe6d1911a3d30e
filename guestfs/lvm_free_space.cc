// Adapts lvm::unused_extents to FreeSpaceMap, and maps a PV for sparsify: its free extents, and its LVs' unused blocks
// by each LV's own content, translated through the LV's segments (blockcore knows extents, guestfs file systems).
#include "guestfs/lvm_free_space.h"

#include <algorithm>

#include "blockcore/lvm/lvm_format.h"
#include "guestfs/probe.h"

namespace vdkit::guestfs {

namespace {

class PvFreeSpace final : public FreeSpaceMap {
 public:
  PvFreeSpace(lvm::VolumeGroup vg, size_t pv, uint64_t size) : vg_(std::move(vg)), pv_(pv), size_(size) {}
  Status unused_ranges(std::vector<std::pair<uint64_t, uint64_t>>& out) override {
    out.clear();
    if (pv_ >= vg_.pvs.size()) return Status::Invalid("VG " + vg_.name + " has no PV " + std::to_string(pv_));
    for (const auto& r : lvm::unused_extents(vg_, pv_)) {
      if (r.offset >= size_) break;
      out.emplace_back(r.offset, std::min(r.length, size_ - r.offset));
    }
    return Status::Ok();
  }

 private:
  lvm::VolumeGroup vg_;
  size_t pv_;
  uint64_t size_;
};

uint64_t total(const ByteRanges& r) {
  uint64_t n = 0;
  for (auto [o, l] : r) n += l;
  return n;
}

}  // namespace

std::unique_ptr<FreeSpaceMap> make_pv_free_space_map(const lvm::VolumeGroup& vg, size_t pv_index,
                                                     uint64_t device_size) {
  return std::make_unique<PvFreeSpace>(vg, pv_index, device_size);
}

Result<const LvmSparseMapper::LvMap*> LvmSparseMapper::lv_map(const lvm::FoundVg& f, const lvm::LogicalVolume& lv) {
  auto key = std::make_pair(f.vg.uuid, lv.name);
  if (auto it = lvs_.find(key); it != lvs_.end()) return &it->second;
  const std::string who = "LV " + f.vg.name + "/" + lv.name;
  LvMap m;
  if (!lv.visible) {
    m.reason = "a hidden part of another LV (thin pool, raid or mirror image, cache)";
  } else if (lv.read_by_other_lv) {
    // A snapshot reads the origin's blocks it has not copied, freed ones included.
    m.reason = "another LV reads it (a snapshot's origin, a thin LV's external origin)";
  } else if (!lv.refusal.empty()) {
    m.reason = lv.refusal;
  } else if (auto opened = lvm::open_logical_volume(f, lv.name); !opened.ok()) {
    if (opened.status().code() == EIO) return opened.status();
    m.reason = opened.status().message();
  } else {
    std::shared_ptr<BlockDevice> dev(std::move(*opened));
    auto probed = probe_fs(*dev);
    if (!probed.ok()) return probed.status().Context("probing " + who);
    m.type = probed->type;
    auto vm = open_volume_free_space(m.type, dev);
    if (!vm.ok()) return vm.status().Context("mapping the unused blocks of " + who);
    m.reason = vm->copied_whole_reason;
    ByteRanges r;
    if (vm->map && m.reason.empty()) {
      Status st = vm->map->unused_ranges(r);
      if (st.code() == EIO) return st.Context("mapping the unused blocks of " + who);
      if (!st.ok()) m.reason = "its allocation map cannot be read: " + st.message();
    }
    if (m.reason.empty()) m.unused = normalize_ranges(std::move(r), dev->size());
  }
  return &lvs_.emplace(key, std::move(m)).first->second;
}

Result<std::optional<PvSparseMap>> LvmSparseMapper::map_pv(int disk_index, int partition, std::string* why) {
  const lvm::FoundVg* f = nullptr;
  size_t pv = 0;
  for (const auto& v : scan_.vgs)
    for (size_t i = 0; i < v.pv_devices.size(); ++i)
      if (v.pv_devices[i] && v.pv_devices[i]->disk_index == disk_index && v.pv_devices[i]->partition == partition) {
        f = &v;
        pv = i;
      }
  if (!f) {
    if (why) {
      *why = "an LVM2 PV whose VG metadata was not found";
      for (const auto& w : scan_.warnings) *why += "; " + w;
    }
    return std::optional<PvSparseMap>();
  }
  const lvm::VolumeGroup& vg = f->vg;
  const lvm::PhysicalVolume& p = vg.pvs[pv];
  BlockDevice& dev = *f->pv_devices[pv]->dev;
  const uint64_t size = dev.size(), eb = vg.extent_size * 512;
  // LVM's own: the label and everything up to the first extent, after the last one, and the metadata areas wherever
  // the label puts them (parse_volume_group checked that the extents' end does not overflow).
  const uint64_t data_start = p.pe_start * 512, data_end = data_start + p.pe_count * eb;
  ByteRanges keep{{0, data_start}};
  if (data_end < size) keep.emplace_back(data_end, size - data_end);
  auto label = lvm::read_pv_label(dev);
  if (!label.ok() && label.status().code() == EIO) return label.status().Context(f->pv_devices[pv]->name);
  if (!label.ok() || !*label) {
    if (why) *why = "its PV label cannot be read again";
    return std::optional<PvSparseMap>();
  }
  for (const auto& a : (*label)->metadata_areas) keep.emplace_back(a.offset, a.size ? a.size : size);

  PvSparseMap out;
  out.vg = vg.name;
  ByteRanges free_extents;
  for (const auto& r : lvm::unused_extents(vg, pv)) free_extents.emplace_back(r.offset, r.length);
  out.free_extents = subtract_ranges(normalize_ranges(std::move(free_extents), size), keep, size);

  // Two LVs on the same extents: the metadata contradicts itself, and one's free blocks may be the other's data.
  std::vector<std::pair<uint64_t, uint64_t>> areas;
  for (const auto& lv : vg.lvs)
    for (const auto& s : lv.segments)
      if (s.type == "striped" && !s.stripes.empty())
        for (const auto& st : s.stripes)
          if (st.pv == pv) areas.emplace_back(st.start_extent, st.start_extent + s.extent_count / s.stripes.size());
  std::sort(areas.begin(), areas.end());
  bool overlap = false;
  for (size_t i = 1; i < areas.size(); ++i) overlap |= areas[i].first < areas[i - 1].second;

  for (const auto& lv : vg.lvs) {
    bool here = false;
    for (const auto& s : lv.segments)
      for (const auto& st : s.stripes) here |= s.type == "striped" && st.pv == pv;
    if (!here) continue;
    PvSparseMap::Lv e;
    e.report.name = vg.name + "/" + lv.name;
    e.report.length = lv.extent_count * eb;
    if (overlap) {
      e.report.reason = "LVs' extents overlap on this PV (the VG metadata contradicts itself)";
    } else {
      VDKIT_ASSIGN_OR_RETURN(const LvMap* m, lv_map(*f, lv));
      e.report.type = m->type;
      e.report.reason = m->reason;
      if (m->reason.empty())
        e.unused = subtract_ranges(normalize_ranges(lvm::lv_ranges_on_pv(vg, lv, pv, m->unused), size), keep, size);
    }
    e.report.mapped = e.report.reason.empty();
    e.report.unused_bytes = total(e.unused);
    out.lvs.push_back(std::move(e));
  }
  return std::optional<PvSparseMap>(std::move(out));
}

}  // namespace vdkit::guestfs
