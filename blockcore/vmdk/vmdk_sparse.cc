// Hosted sparse VMDK extents (monolithicSparse, twoGbMaxExtentSparse, streamOptimized): header, footer, grain tables.
#include <bit>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/vmdk/vmdk_grain_map.h"

namespace vdkit::vmdk {

std::string hex_offset(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

Result<GrainBuffer> GrainMap::grain_table(uint64_t offset, size_t bytes) {
  uint64_t key = GrainCache::make_key(file_id_, offset);
  bool cacheable = gt_cache_ && file_id_ <= kMaxCachedFileId;
  if (cacheable) {
    if (auto hit = gt_cache_->get(key)) return hit;
  }
  auto buf = std::make_shared<std::vector<uint8_t>>(bytes);
  VDKIT_RETURN_IF_ERROR(file_->ReadExact(offset, buf->data(), bytes));
  GrainBuffer out = std::move(buf);
  if (cacheable) gt_cache_->put(key, out);
  return out;
}

namespace {

class HostedGrainMap final : public GrainMap {
 public:
  HostedGrainMap(std::shared_ptr<File> file, uint64_t file_size, uint32_t file_id, GrainCache* gt_cache,
                 const SparseHeader& h, std::vector<uint32_t> gd)
      : GrainMap(std::move(file), file_size, file_id, gt_cache), h_(h), gd_(std::move(gd)) {
    grain_bytes_ = h.grain_bytes();
    compressed_ = h.compressed();
    markers_ = h.has_markers();
    directory_bytes_ = gd_.size() * sizeof(uint32_t);
  }

  uint64_t grains_per_table() const override { return h_.num_gtes_per_gt; }
  bool table_exists(uint64_t grain) const override {
    uint64_t gdi = grain / grains_per_table();
    return gdi >= gd_.size() || gd_[gdi] != 0;  // past the directory: let lookup() report it
  }

  Status lookup(uint64_t first, uint64_t count, std::vector<GrainLoc>& out) override {
    const uint64_t per_gt = h_.num_gtes_per_gt;
    const size_t gt_bytes = per_gt * 4;
    uint64_t g = first, end = first + count;
    while (g < end) {
      uint64_t gdi = g / per_gt;
      uint64_t n = std::min(end, (gdi + 1) * per_gt) - g;
      if (gdi >= gd_.size())
        return Status::Corrupt("'" + file_->path() + "': grain " + std::to_string(g) +
                               " lies past the grain directory (" + std::to_string(gd_.size()) + " entries)");
      if (gd_[gdi] == 0) {
        out.insert(out.end(), n, GrainLoc{});
        g += n;
        continue;
      }
      uint64_t gt_off = static_cast<uint64_t>(gd_[gdi]) * kSectorSize;
      VDKIT_ASSIGN_OR_RETURN(GrainBuffer gt, grain_table(gt_off, gt_bytes));
      for (uint64_t k = 0; k < n; ++k, ++g) {
        uint64_t idx = g % per_gt;
        uint32_t gte = load_le32(gt->data() + idx * 4);
        GrainLoc loc;
        if (gte == 0) {
          loc.state = GrainState::kUnallocated;
        } else if (gte == kGteZeroed && h_.zeroed_grain_gte()) {
          loc.state = GrainState::kZero;
        } else {
          loc.host = static_cast<uint64_t>(gte) * kSectorSize;
          loc.state = compressed_ ? GrainState::kCompressed : GrainState::kData;
          // A data grain must lie inside the file; a compressed grain at least its marker.
          uint64_t need = compressed_ ? (markers_ ? kGrainMarkerBytes : 1) : 1;
          if (!range_within(loc.host, need, file_size_))
            return Status::Corrupt("'" + file_->path() + "': grain table entry " + std::to_string(idx) +
                                   " of the grain table at offset " + hex_offset(gt_off) + " (file offset " +
                                   hex_offset(gt_off + idx * 4) + ") points to " + hex_offset(loc.host) +
                                   ", past the end of the file (" + std::to_string(file_size_) + " bytes)");
        }
        out.push_back(loc);
      }
    }
    return Status::Ok();
  }

 private:
  SparseHeader h_;
  std::vector<uint32_t> gd_;
};

}  // namespace

Result<HostedSparse> open_hosted_sparse(std::shared_ptr<File> file, uint32_t file_id, GrainCache* gt_cache) {
  const std::string& where = file->path();
  VDKIT_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  uint8_t hb[kSparseHeaderBytes] = {};
  VDKIT_ASSIGN_OR_RETURN(size_t got, file->ReadSome(0, hb, sizeof hb));
  if (got < kSparseHeaderBytes)
    return Status::Corrupt("'" + where + "': sparse extent header is truncated (" + std::to_string(got) +
                           " of 512 bytes)");
  HostedSparse s;
  VDKIT_ASSIGN_OR_RETURN(s.header, parse_sparse_header(hb, where, 0));
  VDKIT_RETURN_IF_ERROR(validate_sparse_header(s.header, where, 0));

  // The embedded descriptor belongs to the primary header (the footer repeats its location).
  if (s.header.descriptor_offset != 0) {
    uint64_t off = s.header.descriptor_offset * kSectorSize, len = s.header.descriptor_size * kSectorSize;
    if (!range_within(off, len, file_size))
      return Status::Corrupt("'" + where +
                             "': embedded descriptor (descriptorOffset at 0x1c, descriptorSize at 0x24) " + "at " +
                             hex_offset(off) + " + " + std::to_string(len) + " bytes lies past the end of the file (" +
                             std::to_string(file_size) + " bytes)");
    s.embedded_descriptor.resize(len);
    VDKIT_RETURN_IF_ERROR(file->ReadExact(off, s.embedded_descriptor.data(), len));
    if (auto nul = s.embedded_descriptor.find('\0'); nul != std::string::npos) s.embedded_descriptor.resize(nul);
  }

  if (s.header.gd_offset == kGdAtEnd) {
    // streamOptimized written front to back: the real header is in the footer.
    if (file_size < kStreamTailBytes + kSparseHeaderBytes)
      return Status::Corrupt("'" + where + "': gdOffset at 0x38 says the grain directory is found through the " +
                             "footer, but the streamOptimized footer is missing (file is " + std::to_string(file_size) +
                             " bytes)");
    uint8_t tail[kStreamTailBytes];
    VDKIT_RETURN_IF_ERROR(file->ReadExact(file_size - kStreamTailBytes, tail, sizeof tail));
    VDKIT_ASSIGN_OR_RETURN(SparseHeader footer, parse_stream_footer(tail, file_size, where));
    footer.descriptor_offset = s.header.descriptor_offset;
    footer.descriptor_size = s.header.descriptor_size;
    s.header = footer;
  }
  const SparseHeader& h = s.header;
  uint64_t entries = h.gd_entries();
  uint64_t gd_off = h.gd_offset * kSectorSize;  // gd_offset <= kMaxCapacitySectors: no overflow
  uint64_t gd_bytes = entries * 4;
  if (!range_within(gd_off, gd_bytes, file_size))
    return Status::Corrupt("'" + where + "': grain directory (gdOffset) at " + hex_offset(gd_off) + ", " +
                           std::to_string(gd_bytes) + " bytes, lies past the end of the file (" +
                           std::to_string(file_size) + " bytes)");
  std::vector<uint32_t> gd(entries);
  if (gd_bytes) VDKIT_RETURN_IF_ERROR(file->ReadExact(gd_off, gd.data(), gd_bytes));
  const uint64_t gt_bytes = static_cast<uint64_t>(h.num_gtes_per_gt) * 4;
  for (uint64_t i = 0; i < entries; ++i) {
    gd[i] = load_le32(reinterpret_cast<const uint8_t*>(&gd[i]));
    if (gd[i] == 0) continue;
    uint64_t gt_off = static_cast<uint64_t>(gd[i]) * kSectorSize;
    if (!range_within(gt_off, gt_bytes, file_size))
      return Status::Corrupt("'" + where + "': grain directory entry " + std::to_string(i) + " (file offset " +
                             hex_offset(gd_off + i * 4) + ") points to a grain table at " + hex_offset(gt_off) +
                             " past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  s.map = std::make_unique<HostedGrainMap>(std::move(file), file_size, file_id, gt_cache, h, std::move(gd));
  return s;
}

Status check_capacity(const HostedSparse& s, uint64_t sectors, const std::string& where) {
  if (sectors > s.header.capacity)
    return Status::Corrupt("'" + where + "': the descriptor gives this extent " + std::to_string(sectors) +
                           " sectors but its header field capacity (offset 0xc) says " +
                           std::to_string(s.header.capacity));
  return Status::Ok();
}

}  // namespace vdkit::vmdk
