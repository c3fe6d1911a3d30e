// ESXi seSparse extents: constant and volatile headers, 64-bit grain directory and grain tables with typed entries.
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/vmdk/vmdk_grain_map.h"

namespace vdkit::vmdk {

namespace {

class SeSparseGrainMap final : public GrainMap {
 public:
  SeSparseGrainMap(std::shared_ptr<File> file, uint64_t file_size, uint32_t file_id, GrainCache* gt_cache,
                   const SeSparseHeader& h, std::vector<uint64_t> gd)
      : GrainMap(std::move(file), file_size, file_id, gt_cache), h_(h), gd_(std::move(gd)) {
    grain_bytes_ = h.grain_size * kSectorSize;
    directory_bytes_ = gd_.size() * sizeof(uint64_t);
  }

  uint64_t grains_per_table() const override { return h_.gt_entries(); }
  bool table_exists(uint64_t grain) const override {
    uint64_t gdi = grain / grains_per_table();
    return gdi >= gd_.size() || gd_[gdi] != 0;  // past the directory: let lookup() report it
  }

  Status lookup(uint64_t first, uint64_t count, std::vector<GrainLoc>& out) override {
    const uint64_t per_gt = h_.gt_entries();
    const uint64_t gt_bytes = h_.grain_table_size * kSectorSize;
    const uint64_t gts_off = h_.grain_tables_offset * kSectorSize;
    const uint64_t grains_off = h_.grains_offset * kSectorSize;
    uint64_t g = first, end = first + count;
    while (g < end) {
      uint64_t gdi = g / per_gt;
      uint64_t n = std::min(end, (gdi + 1) * per_gt) - g;
      if (gdi >= gd_.size())
        return Status::Corrupt("'" + file_->path() + "': grain " + std::to_string(g) +
                               " lies past the seSparse grain directory");
      uint64_t gde = gd_[gdi];
      if (gde == 0) {
        out.insert(out.end(), n, GrainLoc{});
        g += n;
        continue;
      }
      // Checked when the directory was read: allocated type, table inside the file.
      uint64_t gt_off = gts_off + (gde & 0xffffffffull) * gt_bytes;
      VDKIT_ASSIGN_OR_RETURN(GrainBuffer gt, grain_table(gt_off, gt_bytes));
      for (uint64_t k = 0; k < n; ++k, ++g) {
        uint64_t idx = g % per_gt;
        uint64_t gte = load_le64(gt->data() + idx * 8);
        GrainLoc loc;
        auto bad = [&](const std::string& what) {
          return Status::Corrupt("'" + file_->path() + "': seSparse grain table entry " + std::to_string(idx) +
                                 " (file offset " + hex_offset(gt_off + idx * 8) + ", value " + hex_offset(gte) + ") " +
                                 what);
        };
        switch (gte & kSeGteTypeMask) {
          case kSeGteUnallocated:
            if (gte != 0) return bad("has unallocated type but stray bits");
            break;
          case kSeGteUnmapped:
          case kSeGteZero:
            loc.state = GrainState::kZero;
            break;
          case kSeGteAllocated: {
            uint64_t num = se_gte_grain_number(gte);
            if (num >= h_.grains_size / h_.grain_size) return bad("names a grain past the grains region (grainsSize)");
            loc.state = GrainState::kData;
            loc.host = grains_off + num * grain_bytes_;
            if (!range_within(loc.host, grain_bytes_, file_size_))
              return bad("points to " + hex_offset(loc.host) + ", past the end of the file (" +
                         std::to_string(file_size_) + " bytes)");
            break;
          }
          default:
            return bad("has an unknown type");
        }
        out.push_back(loc);
      }
    }
    return Status::Ok();
  }

 private:
  SeSparseHeader h_;
  std::vector<uint64_t> gd_;
};

}  // namespace

Result<std::unique_ptr<GrainMap>> open_sesparse(std::shared_ptr<File> file, uint32_t file_id, GrainCache* gt_cache,
                                                uint64_t sectors) {
  const std::string& where = file->path();
  VDKIT_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  uint8_t hb[kSeSparseHeaderBytes] = {};
  VDKIT_ASSIGN_OR_RETURN(size_t got, file->ReadSome(0, hb, sizeof hb));
  if (got < kSeSparseHeaderBytes)
    return Status::Corrupt("'" + where + "': seSparse header is truncated (" + std::to_string(got) + " of 512 bytes)");
  VDKIT_ASSIGN_OR_RETURN(SeSparseHeader h, parse_sesparse_header(hb, where));
  if (sectors > h.capacity)
    return Status::Corrupt("'" + where + "': the descriptor gives this extent " + std::to_string(sectors) +
                           " sectors but the seSparse header field capacity (offset 0x10) says " +
                           std::to_string(h.capacity));
  // Offsets and sizes are at most kMaxCapacitySectors (checked by the parser), so byte products fit.
  uint64_t vh_off = h.volatile_header_offset * kSectorSize;
  uint8_t vh[kSectorSize];
  if (!range_within(vh_off, sizeof vh, file_size))
    return Status::Corrupt("'" + where + "': seSparse volatile header (volatileHeaderOffset at 0x50) at " +
                           hex_offset(vh_off) + " lies past the end of the file");
  VDKIT_RETURN_IF_ERROR(file->ReadExact(vh_off, vh, sizeof vh));
  VDKIT_RETURN_IF_ERROR(check_sesparse_volatile_header(vh, where, vh_off));

  const uint64_t per_gde = h.gt_entries() * h.grain_size;
  const uint64_t entries = div_round_up(sectors, per_gde);  // <= gd_entries(), checked by the parser
  const uint64_t gd_off = h.grain_dir_offset * kSectorSize;
  if (!range_within(gd_off, entries * 8, file_size))
    return Status::Corrupt("'" + where + "': seSparse grain directory (grainDirOffset at 0x80) at " +
                           hex_offset(gd_off) + " lies past the end of the file (" + std::to_string(file_size) +
                           " bytes)");
  std::vector<uint64_t> gd(entries);
  if (entries) VDKIT_RETURN_IF_ERROR(file->ReadExact(gd_off, gd.data(), entries * 8));
  const uint64_t gt_bytes = h.grain_table_size * kSectorSize;
  const uint64_t tables = h.grain_tables_size / h.grain_table_size;
  for (uint64_t i = 0; i < entries; ++i) {
    uint64_t gde = gd[i];
    if (gde == 0) continue;
    auto bad = [&](const std::string& what) {
      return Status::Corrupt("'" + where + "': seSparse grain directory entry " + std::to_string(i) + " (file offset " +
                             hex_offset(gd_off + i * 8) + ", value " + hex_offset(gde) + ") " + what);
    };
    if ((gde & kSeGdeTypeMask) != kSeGdeAllocated) return bad("has an unknown type");
    uint64_t n = gde & 0xffffffffull;
    if (n >= tables) return bad("names a grain table past the grain tables region (grainTablesSize)");
    uint64_t gt_off = h.grain_tables_offset * kSectorSize + n * gt_bytes;
    if (!range_within(gt_off, gt_bytes, file_size))
      return bad("points to a grain table at " + hex_offset(gt_off) + " past the end of the file");
  }
  return std::unique_ptr<GrainMap>(
      std::make_unique<SeSparseGrainMap>(std::move(file), file_size, file_id, gt_cache, h, std::move(gd)));
}

}  // namespace vdkit::vmdk
