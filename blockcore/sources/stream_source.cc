// Stream sources: a raw byte stream, and a streamOptimized VMDK walked marker by marker with no seeks.
#include "blockcore/sources/stream_source.h"

#include <unistd.h>

#include <cstring>
#include <optional>

#include "blockcore/base/checked.h"
#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit {

namespace {

// Sequential reads from a descriptor that cannot seek, counting the position.
class ByteReader {
 public:
  ByteReader(int fd, std::string name, const std::atomic<bool>* cancel)
      : fd_(fd), name_(std::move(name)), cancel_(cancel) {}

  // Reads up to n bytes; fewer only at end of stream.
  Result<size_t> read_some(uint8_t* p, size_t n) {
    size_t got = 0;
    if (!pushback_.empty()) {
      size_t k = std::min(n, pushback_.size() - pb_pos_);
      std::memcpy(p, pushback_.data() + pb_pos_, k);
      pb_pos_ += k;
      got += k;
      if (pb_pos_ == pushback_.size()) {
        pushback_.clear();
        pb_pos_ = 0;
      }
    }
    while (got < n) {
      ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0) {
        if (errno == EINTR) {
          if (cancel_ && cancel_->load()) return Status::Error(ECANCELED, "interrupted");
          continue;
        }
        return Status::FromErrno(errno, "reading " + name_ + " at byte " + std::to_string(pos_ + got));
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    pos_ += got;
    return got;
  }
  Status read_exact(uint8_t* p, size_t n, const char* what) {
    VDKIT_ASSIGN_OR_RETURN(size_t got, read_some(p, n));
    if (got != n)
      return Status::Corrupt(name_ + " ends at byte " + std::to_string(pos_) + " in the middle of " + what +
                             " (the stream is truncated)");
    return Status::Ok();
  }
  Status skip(uint64_t n, const char* what) {
    uint8_t buf[64 << 10];
    while (n > 0) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof buf));
      VDKIT_RETURN_IF_ERROR(read_exact(buf, k, what));
      n -= k;
    }
    return Status::Ok();
  }
  // Puts bytes already read back in front of the stream.
  void unread(std::vector<uint8_t> bytes) {
    pos_ -= bytes.size();
    pushback_ = std::move(bytes);
    pb_pos_ = 0;
  }
  uint64_t pos() const { return pos_; }
  const std::string& name() const { return name_; }

 private:
  int fd_;
  std::string name_;
  const std::atomic<bool>* cancel_;
  uint64_t pos_ = 0;
  std::vector<uint8_t> pushback_;
  size_t pb_pos_ = 0;
};

class RawStream final : public StreamSource {
 public:
  explicit RawStream(ByteReader r) : r_(std::move(r)) {}
  const char* kind() const override { return "raw stream"; }
  uint64_t size() const override { return ended_ ? r_.pos() : 0; }
  uint64_t stream_bytes() const override { return r_.pos(); }

  Result<bool> next(uint64_t window, StreamPiece& piece) override {
    for (;;) {
      if (ended_) return false;
      uint64_t off = r_.pos();
      piece.raw.resize(window);
      VDKIT_ASSIGN_OR_RETURN(size_t got, r_.read_some(piece.raw.data(), window));
      if (got < window) ended_ = true;
      if (got == 0) return false;
      piece.offset = off;
      piece.length = got;
      piece.raw.resize(got);
      piece.stream_bytes = got;
      piece.grains.clear();
      return true;
    }
  }

 private:
  ByteReader r_;
  bool ended_ = false;
};

class VmdkStream final : public StreamSource {
 public:
  VmdkStream(ByteReader r, const vmdk::SparseHeader& h) : r_(std::move(r)), h_(h) {
    capacity_ = h.capacity * vmdk::kSectorSize;
    grain_ = h.grain_bytes();
  }
  const char* kind() const override { return "streamOptimized VMDK stream"; }
  uint64_t size() const override { return capacity_; }
  uint64_t stream_bytes() const override { return r_.pos(); }

  // Skips what lies between the header and the first marker.
  Status start() {
    uint64_t first = h_.overhead * vmdk::kSectorSize;
    if (first < r_.pos())
      return Status::Corrupt(r_.name() + ": header field overhead (" + std::to_string(h_.overhead) +
                             " sectors) at offset 56 points inside the header");
    return r_.skip(first - r_.pos(), "the descriptor and metadata before the first grain");
  }

  Result<bool> next(uint64_t window, StreamPiece& piece) override {
    piece.raw.clear();
    piece.grains.clear();
    piece.codec = Codec::kZlib;
    piece.stream_bytes = 0;
    uint64_t start_pos = r_.pos();
    bool have = false;
    uint64_t win = 0;
    for (;;) {
      if (!pending_) {
        if (ended_) break;
        VDKIT_ASSIGN_OR_RETURN(bool got, read_grain());
        if (!got) break;
      }
      StreamPiece::Grain& g = *pending_;
      uint64_t gw = align_down(g.offset, window);
      if (gw < next_window_)
        return Status::Corrupt(r_.name() + ": the grain for disk offset " + std::to_string(g.offset) +
                               " comes after data at a higher offset; a stream that goes backwards cannot be "
                               "converted front to back (pass the file name instead)");
      if (have && gw != win) break;
      if (!have) {
        have = true;
        win = gw;
      }
      piece.grains.push_back(std::move(g));
      pending_.reset();
    }
    if (!have) return false;
    piece.offset = win;
    piece.length = std::min(window, capacity_ - win);
    piece.stream_bytes = r_.pos() - start_pos;
    next_window_ = win + window;
    return true;
  }

 private:
  // Reads markers until a grain (into pending_) or the end-of-stream marker.
  Result<bool> read_grain() {
    for (;;) {
      uint64_t at = r_.pos();
      uint8_t m[vmdk::kMetadataMarkerBytes];
      VDKIT_ASSIGN_OR_RETURN(size_t got, r_.read_some(m, vmdk::kGrainMarkerBytes));
      if (got == 0) {
        // QEMU (and go-vmdk) keep the grain directory where the header says and
        // write no footer or end-of-stream marker: the file just ends after the
        // last grain. A header that defers the directory to the footer
        // (gdOffset = -1, as VMware writes) promises those markers, so there a
        // missing one means the stream was cut short.
        if (h_.gd_offset != vmdk::kGdAtEnd) {
          ended_ = true;
          return false;
        }
        return Status::Corrupt(r_.name() + " ends at byte " + std::to_string(at) +
                               " without the footer and end-of-stream marker its header (gdOffset = -1) "
                               "promises (the stream is truncated)");
      }
      if (got != vmdk::kGrainMarkerBytes)
        return Status::Corrupt(r_.name() + " ends at byte " + std::to_string(r_.pos()) +
                               " inside a marker (the stream is truncated)");
      // A grain marker has a non-zero size at bytes 8-11.
      uint32_t size;
      std::memcpy(&size, m + 8, 4);
      if (size == 0) {
        VDKIT_RETURN_IF_ERROR(r_.read_exact(m + vmdk::kGrainMarkerBytes,
                                            vmdk::kMetadataMarkerBytes - vmdk::kGrainMarkerBytes, "a marker"));
      }
      VDKIT_ASSIGN_OR_RETURN(vmdk::Marker mk,
                             vmdk::parse_marker(std::span<const uint8_t>(m, size ? 12 : 512), r_.name(), at));
      if (!mk.is_grain()) {
        if (mk.type == static_cast<uint32_t>(vmdk::MarkerType::kEndOfStream)) {
          ended_ = true;
          return false;
        }
        auto bytes = checked_mul(mk.value, vmdk::kSectorSize);
        if (!bytes)
          return Status::Corrupt(r_.name() + ": marker at offset " + std::to_string(at) + " says " +
                                 std::to_string(mk.value) + " sectors follow, which overflows");
        VDKIT_RETURN_IF_ERROR(r_.skip(*bytes, "the metadata after a marker"));
        continue;
      }
      uint64_t limit = vmdk::max_compressed_grain_bytes(grain_);
      if (mk.size > limit)
        return Status::Corrupt(r_.name() + ": grain marker at offset " + std::to_string(at) + " has size " +
                               std::to_string(mk.size) + ", over the limit of " + std::to_string(limit) + " for " +
                               std::to_string(grain_) + "-byte grains");
      auto off = checked_mul(mk.value, vmdk::kSectorSize);
      if (!off || *off >= capacity_ || (*off % grain_) != 0)
        return Status::Corrupt(r_.name() + ": grain marker at offset " + std::to_string(at) + " has LBA " +
                               std::to_string(mk.value) + ", which is not a grain boundary inside the disk (" +
                               std::to_string(h_.capacity) + " sectors)");
      StreamPiece::Grain g;
      g.offset = *off;
      g.length = std::min(grain_, capacity_ - *off);
      g.z.resize(mk.size);
      VDKIT_RETURN_IF_ERROR(r_.read_exact(g.z.data(), mk.size, "a compressed grain"));
      // Markers start on sector boundaries.
      uint64_t used = vmdk::kGrainMarkerBytes + mk.size;
      VDKIT_RETURN_IF_ERROR(
          r_.skip(div_round_up(used, vmdk::kSectorSize) * vmdk::kSectorSize - used, "the padding after a grain"));
      pending_ = std::move(g);
      return true;
    }
  }

  ByteReader r_;
  vmdk::SparseHeader h_;
  uint64_t capacity_ = 0;
  uint64_t grain_ = 0;
  uint64_t next_window_ = 0;
  bool ended_ = false;
  std::optional<StreamPiece::Grain> pending_;
};

}  // namespace

Status fill_from_piece(const StreamPiece& piece, std::span<uint8_t> out) {
  if (!piece.raw.empty()) {
    if (out.size() < piece.raw.size()) return Status::IoError("internal error: stream piece larger than its chunk");
    std::memcpy(out.data(), piece.raw.data(), piece.raw.size());
    return Status::Ok();
  }
  for (const auto& g : piece.grains) {
    uint64_t rel = g.offset - piece.offset;
    if (!range_within(rel, g.length, out.size()))
      return Status::IoError("internal error: grain outside its stream piece");
    Status st = decompress(piece.codec, g.z, out.subspan(rel, g.length));
    if (!st.ok()) return st.Context("grain for disk offset " + std::to_string(g.offset));
  }
  return Status::Ok();
}

Result<std::unique_ptr<StreamSource>> open_stream_source(int fd, const std::string& name,
                                                         const std::atomic<bool>* cancel) {
  ByteReader r(fd, name, cancel);
  std::vector<uint8_t> head(vmdk::kSparseHeaderBytes);
  VDKIT_ASSIGN_OR_RETURN(size_t got, r.read_some(head.data(), head.size()));
  head.resize(got);
  if (got >= 4 && std::memcmp(head.data(), "KDMV", 4) == 0) {
    VDKIT_ASSIGN_OR_RETURN(vmdk::SparseHeader h, vmdk::parse_sparse_header(head, name, 0));
    if (!h.has_markers() || !h.compressed())
      return Status::Unsupported(name +
                                 " holds a VMDK sparse extent that is not streamOptimized (no grain "
                                 "markers): it cannot be read front to back; pass the file name instead");
    VDKIT_RETURN_IF_ERROR(vmdk::validate_sparse_header(h, name, 0));
    if (h.grain_bytes() > kMaxStreamGrainBytes)
      return Status::Unsupported(name + ": grain size " + std::to_string(h.grain_bytes()) +
                                 " bytes (header offset 20) is over the stream reader's limit of " +
                                 std::to_string(kMaxStreamGrainBytes));
    auto s = std::make_unique<VmdkStream>(std::move(r), h);
    VDKIT_RETURN_IF_ERROR(s->start());
    return std::unique_ptr<StreamSource>(std::move(s));
  }
  if (got >= 4 && std::memcmp(head.data(), "QFI\xfb", 4) == 0)
    return Status::Unsupported(name +
                               " holds a qcow2 image, which cannot be read front to back (its tables "
                               "come first but point anywhere); pass the file name instead");
  r.unread(std::move(head));
  return std::unique_ptr<StreamSource>(new RawStream(std::move(r)));
}

}  // namespace vdkit
