// The in-memory copy-on-write overlay: an interval map of written and zeroed byte ranges over a read-only base.
#include "blockcore/layers/overlay.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "blockcore/base/checked.h"

namespace vdkit {

namespace {

using Bytes = std::shared_ptr<const std::vector<uint8_t>>;

// One run of the overlay: `len` bytes that read from buf at buf_off, or as
// zeros when buf is null. Runs share buffers after a later write splits them,
// so splitting never copies; see MemoryOverlay::compact for the bound on
// memory this leaves behind.
struct Run {
  uint64_t len = 0;
  Bytes buf;
  uint64_t buf_off = 0;
};

// Byte-exact ranges rather than fixed blocks: a write of any size or alignment
// is stored as given, so a partial-block write never has to read the base
// (which may be slow, e.g. a compressed grain, or fail) while writing.
class MemoryOverlay final : public BlockDevice {
 public:
  explicit MemoryOverlay(std::shared_ptr<BlockDevice> base) : base_(std::move(base)), size_(base_->size()) {}

  uint64_t size() const override { return size_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    // Copy what the overlay holds under the lock; read the gaps from the
    // base after dropping it so slow base reads never hold up writers. A write
    // that lands on a gap meanwhile races with this read, which NBD allows.
    std::vector<std::pair<uint64_t, uint64_t>> gaps;
    {
      std::shared_lock lock(mu_);
      visit(offset, buf.size(), [&](uint64_t pos, uint64_t len, const Run* run, uint64_t skip) {
        uint8_t* dst = buf.data() + (pos - offset);
        if (!run) gaps.emplace_back(pos, len);
        else if (!run->buf) std::memset(dst, 0, len);
        else std::memcpy(dst, run->buf->data() + run->buf_off + skip, len);
      });
    }
    for (auto [pos, len] : gaps)
      VDKIT_RETURN_IF_ERROR(base_->read(pos, buf.subspan(pos - offset, len)));
    return Status::Ok();
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    std::vector<Extent> mine;  // gaps are marked with length-only entries of type kHole and resolved below
    std::vector<bool> is_gap;
    {
      std::shared_lock lock(mu_);
      visit(offset, length, [&](uint64_t pos, uint64_t len, const Run* run, uint64_t) {
        mine.push_back({pos, len, run ? (run->buf ? ExtentType::kData : ExtentType::kZero) : ExtentType::kHole});
        is_gap.push_back(run == nullptr);
      });
    }
    for (size_t i = 0; i < mine.size(); ++i) {
      if (!is_gap[i]) {
        append_extent(out, mine[i]);
        continue;
      }
      std::vector<Extent> below;
      VDKIT_RETURN_IF_ERROR(base_->extents(mine[i].offset, mine[i].length, below));
      for (const auto& e : below) append_extent(out, e);
    }
    return Status::Ok();
  }

  DeviceCaps caps() const override {
    DeviceCaps c;
    c.writable = c.can_zero = c.can_trim = c.can_flush = true;
    c.flush_consistent = true;  // one map shared by every handle; flush has nothing to persist
    return c;
  }

  Status write(uint64_t offset, std::span<const uint8_t> data) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, data.size()));
    if (data.empty()) return Status::Ok();
    auto copy = std::make_shared<const std::vector<uint8_t>>(data.begin(), data.end());
    std::unique_lock lock(mu_);
    put(offset, Run{data.size(), std::move(copy), 0});
    return Status::Ok();
  }

  // Trimmed ranges read as zeros too: the base below must not show through
  // again, and an in-memory overlay has nothing to give back but memory.
  Status zero(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    if (length == 0) return Status::Ok();
    std::unique_lock lock(mu_);
    put(offset, Run{length, nullptr, 0});
    return Status::Ok();
  }

  Status trim(uint64_t offset, uint64_t length) override { return zero(offset, length); }

  Status flush() override { return Status::Ok(); }

  Status prefetch(uint64_t offset, uint64_t length) override { return base_->prefetch(offset, length); }

  const ImageInfo& info() const override { return base_->info(); }

 private:
  // Calls fn(pos, len, run, skip) for consecutive pieces tiling [offset, offset+length):
  // run is null for a gap (base shows through), else the run covering the piece,
  // which starts `skip` bytes into it. Caller holds mu_.
  template <typename Fn>
  void visit(uint64_t offset, uint64_t length, Fn&& fn) const {
    uint64_t end = offset + length;
    uint64_t pos = offset;
    auto it = runs_.upper_bound(offset);
    if (it != runs_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second.len > offset) it = prev;
    }
    for (; it != runs_.end() && pos < end && it->first < end; ++it) {
      uint64_t rs = it->first, re = rs + it->second.len;
      if (rs > pos) {
        fn(pos, rs - pos, nullptr, 0);
        pos = rs;
      }
      uint64_t piece_end = std::min(re, end);
      fn(pos, piece_end - pos, &it->second, pos - rs);
      pos = piece_end;
    }
    if (pos < end) fn(pos, end - pos, nullptr, 0);
  }

  // Replaces whatever covers [offset, offset+run.len) with run. Caller holds mu_ exclusively.
  void put(uint64_t offset, Run run) {
    uint64_t end = offset + run.len;
    auto it = runs_.upper_bound(offset);
    if (it != runs_.begin()) {
      auto prev = std::prev(it);
      uint64_t ps = prev->first, pe = ps + prev->second.len;
      if (ps < offset && pe > offset) {
        // prev starts before offset and reaches into the new run: keep its head, and its tail if it goes past.
        if (pe > end) {
          Run tail = prev->second;
          tail.buf_off += end - ps;
          tail.len = pe - end;
          runs_.emplace(end, compact(std::move(tail)));
        }
        prev->second.len = offset - ps;
        prev->second = compact(std::move(prev->second));
      }
    }
    it = runs_.lower_bound(offset);
    while (it != runs_.end() && it->first < end) {
      uint64_t rs = it->first, re = rs + it->second.len;
      if (re > end) {
        Run tail = it->second;
        tail.buf_off += end - rs;
        tail.len = re - end;
        runs_.erase(it);
        runs_.emplace(end, compact(std::move(tail)));
        break;
      }
      it = runs_.erase(it);
    }
    runs_.emplace(offset, std::move(run));
  }

  // A piece left from splitting a run keeps the whole buffer alive. When it
  // is under half of that buffer, give it a buffer of its own: then every
  // buffer is at least half in use, so memory stays under twice what the
  // overlay actually holds, however writes overlap.
  static Run compact(Run r) {
    if (r.buf && r.len * 2 < r.buf->size()) {
      auto own = std::make_shared<const std::vector<uint8_t>>(r.buf->begin() + static_cast<ptrdiff_t>(r.buf_off),
                                                              r.buf->begin() + static_cast<ptrdiff_t>(r.buf_off + r.len));
      r.buf = std::move(own);
      r.buf_off = 0;
    }
    return r;
  }

  std::shared_ptr<BlockDevice> base_;
  const uint64_t size_;
  // Lock order: mu_ is never held while calling into base_.
  mutable std::shared_mutex mu_;
  std::map<uint64_t, Run> runs_;  // by start offset; runs never overlap and have len > 0
};

}  // namespace

BlockDevicePtr make_memory_overlay(std::shared_ptr<BlockDevice> base) {
  return std::make_unique<MemoryOverlay>(std::move(base));
}

}  // namespace vdkit
