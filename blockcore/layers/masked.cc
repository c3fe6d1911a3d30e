// MaskedDevice: reads and extents of the base with the masked ranges cut out as zeros/holes.
#include "blockcore/layers/masked.h"

#include <algorithm>
#include <cstring>

namespace vdkit {
namespace {

class MaskedDevice final : public BlockDevice {
 public:
  MaskedDevice(std::shared_ptr<BlockDevice> base, ByteRanges masked)
      : base_(std::move(base)), masked_(normalize_ranges(std::move(masked), base_->size())) {}

  uint64_t size() const override { return base_->size(); }

  // Reads the unmasked pieces from the base and zero-fills the masked ones.
  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return split(
        offset, buf.size(), [&](uint64_t pos, uint64_t n) { return base_->read(pos, buf.subspan(pos - offset, n)); },
        [&](uint64_t pos, uint64_t n) { std::memset(buf.data() + (pos - offset), 0, n); });
  }

  // The base's extents, with every masked byte turned into a hole. The base is not asked about a masked range.
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    std::vector<Extent> base;
    return split(
        offset, length,
        [&](uint64_t pos, uint64_t n) {
          base.clear();
          VDKIT_RETURN_IF_ERROR(base_->extents(pos, n, base));
          for (const Extent& e : base) {
            uint64_t s = std::max(e.offset, pos), t = std::min(e.offset + e.length, pos + n);
            if (s < t) append_extent(out, {s, t - s, e.type});
          }
          return Status::Ok();
        },
        [&](uint64_t pos, uint64_t n) {
          append_extent(out, {pos, n, ExtentType::kHole});
        });
  }

  DeviceCaps caps() const override {
    DeviceCaps c;
    c.flush_consistent = true;
    return c;
  }
  // Only the unmasked pieces: a masked range is never read below, not even ahead of time.
  Status prefetch(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return split(
        offset, length, [&](uint64_t pos, uint64_t n) { return base_->prefetch(pos, n); }, [](uint64_t, uint64_t) {});
  }
  const ImageInfo& info() const override { return base_->info(); }

 private:
  // Walks [offset, offset+length) in order, calling unmasked(pos, n) (which may fail) for each piece outside the
  // mask and masked(pos, n) for each piece inside it.
  template <class Unmasked, class Masked>
  Status split(uint64_t offset, uint64_t length, Unmasked unmasked, Masked masked) const {
    const uint64_t end = offset + length;
    uint64_t pos = offset;
    for (auto it = first_ending_after(masked_, offset); pos < end; ++it) {
      uint64_t hole_start = it == masked_.end() ? end : std::min(end, std::max(pos, it->first));
      if (hole_start > pos) VDKIT_RETURN_IF_ERROR(unmasked(pos, hole_start - pos));
      if (it == masked_.end()) break;
      uint64_t hole_end = std::min(end, it->first + it->second);
      if (hole_end > hole_start) masked(hole_start, hole_end - hole_start);
      pos = std::max(pos, hole_end);
    }
    return Status::Ok();
  }

  std::shared_ptr<BlockDevice> base_;
  const ByteRanges masked_;
};

}  // namespace

BlockDevicePtr make_masked_device(std::shared_ptr<BlockDevice> base, ByteRanges masked) {
  return std::make_unique<MaskedDevice>(std::move(base), std::move(masked));
}

}  // namespace vdkit
