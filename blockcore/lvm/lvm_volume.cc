// Scanning candidates for PVs and mapping LV offsets onto PV devices (linear and striped segments).
#include "blockcore/lvm/lvm_volume.h"

#include <algorithm>
#include <map>

#include "blockcore/base/checked.h"

namespace vdkit::lvm {

namespace {

std::string strip_dashes(const std::string& u) {
  std::string out;
  for (char c : u)
    if (c != '-') out += c;
  return out;
}

// One segment as byte arithmetic: [lv_start, lv_start + length) spread over `bases` in chunks of `chunk`.
struct MappedSegment {
  uint64_t lv_start = 0;
  uint64_t length = 0;
  uint64_t chunk = 0;  // == length for one stripe
  std::vector<std::pair<std::shared_ptr<BlockDevice>, uint64_t>> bases;  // device and byte offset of the area
};

class LvDevice final : public BlockDevice {
 public:
  LvDevice(std::vector<MappedSegment> segs, uint64_t size, ImageInfo info)
      : segs_(std::move(segs)), size_(size), info_(std::move(info)) {
    for (const auto& s : segs_)
      for (const auto& b : s.bases)
        if (std::find(devs_.begin(), devs_.end(), b.first) == devs_.end()) devs_.push_back(b.first);
  }

  uint64_t size() const override { return size_; }
  const ImageInfo& info() const override { return info_; }

  DeviceCaps caps() const override {
    DeviceCaps c;
    c.writable = c.can_zero = c.can_trim = c.can_flush = c.flush_consistent = true;
    for (const auto& d : devs_) {
      DeviceCaps dc = d->caps();
      c.writable &= dc.writable;
      c.can_zero &= dc.can_zero;
      c.can_trim &= dc.can_trim;
      c.can_flush &= dc.can_flush;
      c.flush_consistent &= dc.flush_consistent;
    }
    return c;
  }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return walk(offset, buf.size(), [&](BlockDevice& d, uint64_t off, uint64_t done, uint64_t n) {
      return d.read(off, buf.subspan(done, n));
    });
  }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return walk(offset, buf.size(), [&](BlockDevice& d, uint64_t off, uint64_t done, uint64_t n) {
      return d.write(off, buf.subspan(done, n));
    });
  }
  Status zero(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return walk(offset, length, [&](BlockDevice& d, uint64_t off, uint64_t, uint64_t n) { return d.zero(off, n); });
  }
  Status trim(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return walk(offset, length, [&](BlockDevice& d, uint64_t off, uint64_t, uint64_t n) { return d.trim(off, n); });
  }
  Status prefetch(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return walk(offset, length,
                [&](BlockDevice& d, uint64_t off, uint64_t, uint64_t n) { return d.prefetch(off, n); });
  }
  Status flush() override {
    for (const auto& d : devs_) VDKIT_RETURN_IF_ERROR(d->flush());
    return Status::Ok();
  }
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return walk(offset, length, [&](BlockDevice& d, uint64_t off, uint64_t done, uint64_t n) {
      std::vector<Extent> under;
      VDKIT_RETURN_IF_ERROR(d.extents(off, n, under));
      for (const Extent& e : under) {
        uint64_t s = std::max(e.offset, off), t = std::min(e.offset + e.length, off + n);
        if (s < t) append_extent(out, {offset + done + (s - off), t - s, e.type});
      }
      return Status::Ok();
    });
  }

 private:
  // Calls fn(device, device offset, bytes done so far, run length) for each contiguous run of [offset, +length).
  template <typename Fn>
  Status walk(uint64_t offset, uint64_t length, Fn&& fn) {
    uint64_t done = 0;
    while (done < length) {
      uint64_t pos = offset + done;
      auto it = std::upper_bound(segs_.begin(), segs_.end(), pos,
                                 [](uint64_t p, const MappedSegment& s) { return p < s.lv_start; });
      const MappedSegment& s = *(it - 1);  // segments cover [0, size) from 0, so one starts at or before pos
      uint64_t o = pos - s.lv_start;
      uint64_t chunk_index = o / s.chunk, in_chunk = o % s.chunk;
      const size_t n = s.bases.size();
      const auto& [dev, base] = s.bases[chunk_index % n];
      uint64_t dev_off = base + (chunk_index / n) * s.chunk + in_chunk;
      uint64_t run = std::min({s.chunk - in_chunk, s.length - o, length - done});
      VDKIT_RETURN_IF_ERROR(fn(*dev, dev_off, done, run));
      done += run;
    }
    return Status::Ok();
  }

  std::vector<MappedSegment> segs_;
  std::vector<std::shared_ptr<BlockDevice>> devs_;
  uint64_t size_;
  ImageInfo info_;
};

bool refers_to_sub_lvs(const std::string& type) {
  static const char* const kTypes[] = {"thin-pool", "thin", "mirror", "cache", "cache-pool", "writecache",
                                       "vdo", "vdo-pool", "snapshot", "integrity", "error", "zero"};
  if (type.rfind("raid", 0) == 0) return true;
  return std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes);
}

}  // namespace

Result<ScanResult> scan(const std::vector<PvCandidate>& candidates) {
  ScanResult out;
  struct Labelled {
    const PvCandidate* where;
    PvLabel label;
  };
  std::vector<Labelled> pvs;
  struct Best {
    VolumeGroup vg;
    std::string from;
  };
  std::map<std::string, Best> by_uuid;  // VG UUID -> the copy with the highest seqno
  for (const auto& c : candidates) {
    auto label = read_pv_label(*c.dev);
    if (!label.ok()) {
      if (label.status().code() == EIO) return label.status().Context(c.name);
      out.warnings.push_back(c.name + ": " + label.status().message());
      continue;
    }
    if (!*label) continue;
    pvs.push_back({&c, **label});
    for (const DiskArea& a : (*label)->metadata_areas) {
      auto copy = read_metadata_area(*c.dev, a);
      if (!copy.ok()) {
        if (copy.status().code() == EIO) return copy.status().Context(c.name);
        out.warnings.push_back(c.name + ": " + copy.status().message());
        continue;
      }
      if (!*copy) continue;
      auto text = parse_text((*copy)->text);
      auto vg = text.ok() ? parse_volume_group(*text) : Result<VolumeGroup>(text.status());
      if (!vg.ok()) {
        out.warnings.push_back(c.name + ": metadata area at offset " + std::to_string(a.offset) + ": " +
                               vg.status().message());
        continue;
      }
      auto it = by_uuid.find(vg->uuid);
      if (it == by_uuid.end() || vg->seqno > it->second.vg.seqno)
        by_uuid[vg->uuid] = {std::move(*vg), c.name};
    }
  }
  for (auto& [uuid, best] : by_uuid) {
    FoundVg f;
    f.vg = std::move(best.vg);
    f.metadata_from = best.from;
    for (const auto& pv : f.vg.pvs) {
      const std::string want = strip_dashes(pv.uuid);
      std::optional<PvCandidate> where;
      for (const auto& l : pvs) {
        if (l.label.uuid != want) continue;
        if (where)
          return Status::Invalid("PV " + pv.uuid + " of VG " + f.vg.name + " is on both " + where->name + " and " +
                                 l.where->name + " (a copied disk given twice?)");
        where = *l.where;
      }
      f.pv_devices.push_back(std::move(where));
    }
    out.vgs.push_back(std::move(f));
  }
  std::sort(out.vgs.begin(), out.vgs.end(), [](const FoundVg& a, const FoundVg& b) { return a.vg.name < b.vg.name; });
  for (size_t i = 1; i < out.vgs.size(); ++i)
    if (out.vgs[i].vg.name == out.vgs[i - 1].vg.name)
      out.warnings.push_back("two VGs are named " + out.vgs[i].vg.name + " (UUIDs " + out.vgs[i - 1].vg.uuid +
                             " and " + out.vgs[i].vg.uuid + "); name one by its UUID-free name is ambiguous");
  return out;
}

Result<BlockDevicePtr> open_logical_volume(const FoundVg& f, const std::string& lv_name) {
  const VolumeGroup& vg = f.vg;
  const LogicalVolume* lv = vg.find_lv(lv_name);
  if (!lv) {
    std::string names;
    for (const auto& l : vg.lvs)
      if (l.visible) names += (names.empty() ? "" : ", ") + l.name;
    return Status::Invalid("VG " + vg.name + " has no LV " + lv_name + " (it has " +
                           (names.empty() ? std::string("none") : names) + ")");
  }
  if (!lv->refusal.empty()) return Status::Unsupported(lv->refusal);
  const uint64_t extent_bytes = vg.extent_size * 512;
  std::vector<MappedSegment> segs;
  for (const Segment& s : lv->segments) {
    MappedSegment m;
    m.lv_start = s.start_extent * extent_bytes;
    m.length = s.extent_count * extent_bytes;
    m.chunk = s.stripes.size() > 1 ? s.stripe_size * 512 : m.length;
    const uint64_t per_stripe = m.length / s.stripes.size();
    for (const Stripe& st : s.stripes) {
      const PhysicalVolume& pv = vg.pvs[st.pv];
      const auto& where = f.pv_devices[st.pv];
      if (!where)
        return Status::Invalid("LV " + vg.name + "/" + lv->name + ": PV " + pv.uuid + " of VG " + vg.name +
                               " is not among the given disks");
      uint64_t base = pv.pe_start * 512 + st.start_extent * extent_bytes;
      if (!range_within(base, per_stripe, where->dev->size()))
        return Status::Corrupt("LV " + vg.name + "/" + lv->name + ": extents " + std::to_string(st.start_extent) +
                               "+" + std::to_string(per_stripe / extent_bytes) + " lie past the end of PV " +
                               pv.uuid + " on " + where->name + " (" + std::to_string(where->dev->size()) + " bytes)");
      m.bases.emplace_back(where->dev, base);
    }
    segs.push_back(std::move(m));
  }
  ImageInfo info = segs.front().bases.front().first->info();
  info.specific.emplace_back("logical volume", vg.name + "/" + lv->name);
  return BlockDevicePtr(std::make_unique<LvDevice>(std::move(segs), lv->extent_count * extent_bytes, std::move(info)));
}

std::vector<PvFreeRange> unused_extents(const VolumeGroup& vg, size_t pv_index) {
  const PhysicalVolume& pv = vg.pvs[pv_index];
  std::vector<std::pair<uint64_t, uint64_t>> used;  // extent ranges [a, b) of this PV
  for (const auto& lv : vg.lvs)
    for (const auto& s : lv.segments) {
      if (s.type != "striped") {
        // Thin pools, raid, mirrors, caches, snapshots and VDO place their data in hidden sub-LVs (striped, and
        // counted there); a type not known to do so may name PV areas vdkit does not parse: keep the whole PV.
        if (!refers_to_sub_lvs(s.type)) return {};
        continue;
      }
      uint64_t per = s.extent_count / s.stripes.size();
      for (const auto& st : s.stripes)
        if (st.pv == pv_index) used.emplace_back(st.start_extent, std::min(st.start_extent + per, pv.pe_count));
    }
  std::sort(used.begin(), used.end());
  std::vector<PvFreeRange> out;
  const uint64_t eb = vg.extent_size * 512;
  uint64_t at = 0;
  auto add = [&](uint64_t a, uint64_t b) {
    if (a < b) out.push_back({pv.pe_start * 512 + a * eb, (b - a) * eb});
  };
  for (const auto& [a, b] : used) {
    add(at, a);
    at = std::max(at, b);
  }
  add(at, pv.pe_count);
  return out;
}

ByteRanges lv_ranges_on_pv(const VolumeGroup& vg, const LogicalVolume& lv, size_t pv_index,
                           const ByteRanges& lv_ranges) {
  ByteRanges out;
  const uint64_t eb = vg.extent_size * 512;
  for (const Segment& s : lv.segments) {
    if (s.type != "striped" || s.stripes.empty()) continue;
    const uint64_t seg_start = s.start_extent * eb, seg_len = s.extent_count * eb;
    const uint64_t n = s.stripes.size();
    const uint64_t chunk = n > 1 ? s.stripe_size * 512 : seg_len;
    if (chunk == 0) continue;
    for (auto it = first_ending_after(lv_ranges, seg_start); it != lv_ranges.end() && it->first < seg_start + seg_len;
         ++it) {
      // The range's part in this segment, as offsets into the segment.
      const uint64_t a = std::max(it->first, seg_start) - seg_start;
      const uint64_t b = std::min(it->first + it->second, seg_start + seg_len) - seg_start;
      if (a >= b) continue;
      const uint64_t kf = a / chunk, kl = (b - 1) / chunk;  // the chunks it touches
      for (uint64_t st = 0; st < n; ++st) {
        if (s.stripes[st].pv != pv_index) continue;
        // Chunk k lies on stripe k % n, in row k / n of it; the rows of one stripe follow each other on the PV, and
        // the chunks between the first and the last touched are whole, so one stripe's part is one run of the PV.
        const uint64_t k1 = kf + (st + n - kf % n) % n;
        if (k1 > kl) continue;
        const uint64_t k2 = kl - (kl % n + n - st) % n;
        const uint64_t base = vg.pvs[pv_index].pe_start * 512 + s.stripes[st].start_extent * eb;
        const uint64_t from = base + (k1 / n) * chunk + (std::max(a, k1 * chunk) - k1 * chunk);
        const uint64_t to = base + (k2 / n) * chunk + (std::min(b, (k2 + 1) * chunk) - k2 * chunk);
        if (from < to) out.emplace_back(from, to - from);
      }
    }
  }
  return out;
}

}  // namespace vdkit::lvm
