// In-place sinks: raw data with its zero ranges, qcow2 through an ordered positional writer, and the periodic
// checkpoint.
#include "blockcore/convert/target_sinks.h"

#include <chrono>
#include <cstring>

#include "blockcore/base/checked.h"
#include "blockcore/convert/qcow2_writer.h"
#include "blockcore/convert/raw_writer.h"

namespace vdkit {

namespace {

constexpr uint64_t kRawUnit = kZeroBlock;
// Zero gaps inside a chunk shorter than this are written with the data (the
// chunk holds those zeros already): one write beats a write, a zero request
// and a write.
constexpr uint64_t kMergeGap = 64u << 10;
// The ordered writer's buffer: one O_DIRECT-aligned write per this many bytes.
constexpr uint64_t kSeqBuffer = 4u << 20;
// Zero runs at least this long go to OutputTarget::zero instead of the buffer.
constexpr uint64_t kSeqZeroRun = 1u << 20;

// Writes a target front to back through a buffer, for the qcow2 laid out in advance.
class TargetSeqOut final : public SequentialOut {
 public:
  explicit TargetSeqOut(OutputTarget& t) : t_(t) { buf_.resize(kSeqBuffer); }
  using SequentialOut::write_all;
  Status write_all(const uint8_t* p, uint64_t n) override {
    while (n > 0) {
      uint64_t k = std::min<uint64_t>(n, buf_.size() - used_);
      std::memcpy(buf_.data() + used_, p, k);
      used_ += k;
      p += k;
      n -= k;
      if (used_ == buf_.size()) VDKIT_RETURN_IF_ERROR(push());
    }
    return Status::Ok();
  }
  Status zeros_to(uint64_t end) override {
    if (end <= pos()) return Status::Ok();
    if (end - pos() >= kSeqZeroRun) {
      VDKIT_RETURN_IF_ERROR(push());
      VDKIT_RETURN_IF_ERROR(t_.zero(start_, end - start_));
      start_ = end;
      return Status::Ok();
    }
    while (pos() < end) {
      uint64_t k = std::min<uint64_t>(end - pos(), buf_.size() - used_);
      std::memset(buf_.data() + used_, 0, k);
      used_ += k;
      if (used_ == buf_.size()) VDKIT_RETURN_IF_ERROR(push());
    }
    return Status::Ok();
  }
  uint64_t pos() const override { return start_ + used_; }
  Status seek(uint64_t pos) override {
    VDKIT_RETURN_IF_ERROR(push());
    start_ = pos;
    return Status::Ok();
  }
  Status write_at(uint64_t off, const std::vector<uint8_t>& b) override {
    VDKIT_RETURN_IF_ERROR(push());
    IoRequest r{-1, const_cast<uint8_t*>(b.data()), b.size(), off, true, 0};
    return t_.write(std::span<const IoRequest>(&r, 1));
  }
  Status flush() override {
    VDKIT_RETURN_IF_ERROR(push());
    return t_.flush();
  }

 private:
  Status push() {
    if (used_ == 0) return Status::Ok();
    IoRequest r{-1, buf_.data(), used_, start_, true, 0};
    VDKIT_RETURN_IF_ERROR(t_.write(std::span<const IoRequest>(&r, 1)));
    start_ += used_;
    used_ = 0;
    return Status::Ok();
  }

  OutputTarget& t_;
  ChunkBuffer buf_;
  uint64_t start_ = 0;  // target offset of buf_[0]
  uint64_t used_ = 0;
};

// Raw in place: data where the source has it, zero ranges everywhere else below the virtual size.
class RawTargetSink final : public ConvertSink {
 public:
  RawTargetSink(OutputTarget& t, bool target_is_zero, uint64_t start)
      : t_(t), target_is_zero_(target_is_zero), pos_(start), reached_(start) {}
  uint64_t granularity() const override { return kRawUnit; }

  Status begin(uint64_t size) override {
    if (size > t_.size()) return Status::Error(ENOSPC, "internal error: the source is larger than '" + t_.name() + "'");
    return Status::Ok();
  }

  Status put(const ConvertChunk& c) override {
    reqs_.clear();
    VDKIT_RETURN_IF_ERROR(for_each_used_run(c, kRawUnit, kMergeGap, [&](uint64_t u, uint64_t v) {
      uint64_t off = c.offset + u * kRawUnit;
      uint64_t end = c.offset + std::min(v * kRawUnit, c.length);
      VDKIT_RETURN_IF_ERROR(zero_to(off));
      reqs_.push_back(IoRequest{-1, const_cast<uint8_t*>(c.data.data() + u * kRawUnit), end - off, off, true, 0});
      written_ += end - off;
      pos_ = end;
      return Status::Ok();
    }));
    // Only a chunk whose writes all landed counts as reached.
    if (!reqs_.empty()) VDKIT_RETURN_IF_ERROR(t_.write(reqs_));
    reached_ = c.offset + c.length;
    return Status::Ok();
  }

  Status finish(uint64_t size) override {
    VDKIT_RETURN_IF_ERROR(zero_to(size));
    return t_.flush();
  }
  uint64_t bytes_written() const override { return written_; }

  Result<uint64_t> flush_reached() override {
    VDKIT_RETURN_IF_ERROR(zero_to(reached_));
    VDKIT_RETURN_IF_ERROR(t_.flush());
    return reached_;
  }

 private:
  // Everything from pos_ to `end` holds no data: zero it (unless the target is zero already).
  Status zero_to(uint64_t end) {
    if (end <= pos_) return Status::Ok();
    if (!target_is_zero_) VDKIT_RETURN_IF_ERROR(t_.zero(pos_, end - pos_));
    pos_ = end;
    return Status::Ok();
  }

  OutputTarget& t_;
  bool target_is_zero_;
  uint64_t pos_;      // below this, every byte is written or zeroed (once the last put succeeded)
  uint64_t reached_;  // the end of the last chunk put whose writes all succeeded
  uint64_t written_ = 0;
  std::vector<IoRequest> reqs_;
};

// Forwards to a sink and flushes it every few seconds or GiB, reporting the point reached.
class CheckpointingSink final : public ConvertSink {
 public:
  CheckpointingSink(std::unique_ptr<ConvertSink> inner, InPlaceOptions place)
      : inner_(std::move(inner)), place_(std::move(place)), last_(std::chrono::steady_clock::now()) {}
  uint64_t granularity() const override { return inner_->granularity(); }
  bool wants_compression() const override { return inner_->wants_compression(); }
  Codec codec() const override { return inner_->codec(); }
  bool needs_plan() const override { return inner_->needs_plan(); }
  Status plan(const ConvertChunk& c) override { return inner_->plan(c); }
  Status end_plan(uint64_t size) override { return inner_->end_plan(size); }
  Status begin(uint64_t size) override {
    VDKIT_RETURN_IF_ERROR(inner_->begin(size));
    last_ = std::chrono::steady_clock::now();
    return Status::Ok();
  }
  Status put(const ConvertChunk& c) override {
    VDKIT_RETURN_IF_ERROR(inner_->put(c));
    since_ += c.length;
    auto now = std::chrono::steady_clock::now();
    if (since_ < kCheckpointBytes && std::chrono::duration<double>(now - last_).count() < place_.checkpoint_seconds)
      return Status::Ok();
    VDKIT_RETURN_IF_ERROR(inner_->settle(0));  // the flush covers every chunk put so far
    VDKIT_ASSIGN_OR_RETURN(uint64_t reached, inner_->flush_reached());
    since_ = 0;
    last_ = std::chrono::steady_clock::now();
    if (place_.on_flushed) VDKIT_RETURN_IF_ERROR(place_.on_flushed(reached));
    return Status::Ok();
  }
  size_t puts_in_flight() const override { return inner_->puts_in_flight(); }
  Status settle(size_t n) override { return inner_->settle(n); }
  Status finish(uint64_t size) override { return inner_->finish(size); }
  uint64_t bytes_written() const override { return inner_->bytes_written(); }
  Result<uint64_t> flush_reached() override { return inner_->flush_reached(); }

 private:
  std::unique_ptr<ConvertSink> inner_;
  InPlaceOptions place_;
  std::chrono::steady_clock::time_point last_;
  uint64_t since_ = 0;
};

}  // namespace

Result<std::unique_ptr<ConvertSink>> make_in_place_sink(OutputTarget& target, const ConvertOptions& opts,
                                                        const InPlaceOptions& place) {
  if (place.start % kConvertChunk != 0)
    return Status::Invalid("internal error: a resumed run must start on a chunk boundary");
  std::unique_ptr<ConvertSink> sink;
  if (opts.format == TargetFormat::kRaw) {
    if (opts.compress) return Status::Invalid("compression (-c) needs a qcow2 target (-O qcow2)");
    sink = std::make_unique<RawTargetSink>(target, opts.target_is_zero, place.start);
  } else {
    Qcow2WriterOptions q;
    q.cluster_size = opts.cluster_size;
    q.compress = opts.compress;
    q.codec = opts.codec;
    Qcow2InPlaceOptions qp;
    qp.max_end = target.size();
    qp.start = place.start;
    VDKIT_ASSIGN_OR_RETURN(sink,
                           make_qcow2_in_place_sink(std::make_unique<TargetSeqOut>(target), target.name(), q, qp));
  }
  return std::unique_ptr<ConvertSink>(new CheckpointingSink(std::move(sink), place));
}

}  // namespace vdkit
