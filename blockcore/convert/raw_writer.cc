// Raw targets: sparse positional writes batched through the I/O engine, or a sequential stream for pipes.
#include "blockcore/convert/raw_writer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "blockcore/base/checked.h"
#include "blockcore/io/io_engine.h"

namespace vdkit {

namespace {

constexpr uint64_t kRawUnit = kZeroBlock;
// Buffered writes are cut to this size: multi-MiB buffered writes into a large
// sparse file measured two to seven times slower here than 256 KiB ones
// (bench/convert, raw targets), the page cache throttling each big write as one.
constexpr uint64_t kBufferedMaxWrite = 256u << 10;
// Direct writes bypass the page cache, so size does not throttle them: a whole
// 4 MiB chunk run goes down as one request (1 MiB pieces, four in flight
// through io_uring, measured no faster).
constexpr uint64_t kDirectMaxWrite = 4u << 20;
// Direct writes need offset, length and buffer aligned to the device block;
// 4 KiB covers every block size statx reported that we accept.
constexpr uint64_t kDirectAlign = 4096;

Result<int> dup_fd(int fd, const std::string& name) {
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return Status::FromErrno(errno, "duplicating the descriptor of '" + name + "'");
  return d;
}

// A second descriptor of the target opened with O_DIRECT, when the file
// system takes direct writes of kDirectAlign-aligned offsets, lengths and
// buffers (statx STATX_DIOALIGN); null otherwise (tmpfs, older kernels, no
// /proc, TargetIo::direct off).
std::shared_ptr<File> open_direct(int fd, const std::string& name, const TargetIo& io) {
  if (!io.direct) return nullptr;
  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN | STATX_TYPE, &sx) != 0) return nullptr;
  uint32_t mem = sx.stx_dio_mem_align, off = sx.stx_dio_offset_align;
  if (!(sx.stx_mask & STATX_DIOALIGN)) {
    // Kernels before 6.11 give no DIOALIGN for block devices; their direct
    // I/O alignment is the logical sector size.
    int sector = 0;
    if (!S_ISBLK(sx.stx_mode) || ::ioctl(fd, BLKSSZGET, &sector) != 0 || sector <= 0) return nullptr;
    mem = off = static_cast<uint32_t>(sector);
  }
  if (mem == 0 || off == 0 || kDirectAlign % mem != 0 || kDirectAlign % off != 0) return nullptr;
  // A new open file description: O_DIRECT set with F_SETFL on a duplicate
  // would also change the caller's descriptor.
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  int d = ::open(proc.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (d < 0) return nullptr;
  return File::FromFd(d, name, true, io.direct_engine ? io.direct_engine : &default_io_engine());
}

bool direct_aligned(uint64_t v) { return v % kDirectAlign == 0; }

// Appends [buf, buf+len) at off to out, merged into the last request when
// both memory and file are contiguous, cut at max bytes.
void append_write(std::vector<IoRequest>& out, uint8_t* buf, uint64_t len, uint64_t off, uint64_t max) {
  while (len > 0) {
    if (!out.empty()) {
      IoRequest& last = out.back();
      if (static_cast<uint8_t*>(last.buf) + last.len == buf && last.offset + last.len == off && last.len < max) {
        uint64_t n = std::min<uint64_t>(len, max - last.len);
        last.len += n;
        buf += n;
        off += n;
        len -= n;
        continue;
      }
    }
    uint64_t n = std::min(len, max);
    out.push_back(IoRequest{-1, buf, n, off, true, 0});
    buf += n;
    off += n;
    len -= n;
  }
}

class RawFileSink final : public ConvertSink {
 public:
  RawFileSink(std::unique_ptr<TargetFile> file, bool sync) : file_(std::move(file)), sync_(sync) {}
  uint64_t granularity() const override { return kRawUnit; }

  Status begin(uint64_t size) override { return size ? file_->file().Truncate(size) : Status::Ok(); }

  Status put(const ConvertChunk& c) override {
    reqs_.clear();
    VDKIT_RETURN_IF_ERROR(for_each_used_run(c, kRawUnit, 0, [&](uint64_t u, uint64_t v) {
      uint64_t off = u * kRawUnit;
      uint64_t end = std::min(v * kRawUnit, c.length);
      reqs_.push_back(IoRequest{-1, const_cast<uint8_t*>(c.data.data() + off), end - off, c.offset + off, true, 0});
      written_ += end - off;
      return Status::Ok();
    }));
    return file_->write_async(reqs_);
  }
  size_t puts_in_flight() const override { return kFileChunksInFlight; }
  Status settle(size_t n) override { return file_->settle(n); }

  Status finish(uint64_t size) override {
    VDKIT_RETURN_IF_ERROR(file_->settle(0));
    VDKIT_RETURN_IF_ERROR(file_->file().Truncate(size));
    if (sync_) VDKIT_RETURN_IF_ERROR(file_->file().Sync());
    return Status::Ok();
  }
  uint64_t bytes_written() const override { return written_; }

 private:
  std::unique_ptr<TargetFile> file_;
  bool sync_;
  uint64_t written_ = 0;
  std::vector<IoRequest> reqs_;
};

// Writes everything in order with write(2): a pipe cannot hold holes.
class RawStreamSink final : public ConvertSink {
 public:
  RawStreamSink(int fd, std::string name) : out_(fd, std::move(name)) {}
  uint64_t granularity() const override { return kRawUnit; }
  Status begin(uint64_t) override { return Status::Ok(); }

  Status put(const ConvertChunk& c) override {
    if (c.offset < out_.pos()) return Status::IoError("internal error: raw stream chunk out of order");
    VDKIT_RETURN_IF_ERROR(out_.zeros_to(c.offset));
    return out_.write_all(c.data.data(), c.length);
  }

  Status finish(uint64_t size) override { return out_.zeros_to(size); }
  uint64_t bytes_written() const override { return out_.pos(); }

 private:
  StreamWriter out_;
};

}  // namespace

Status for_each_used_run(const ConvertChunk& c, uint64_t unit, uint64_t merge_gap,
                         const std::function<Status(uint64_t first, uint64_t end)>& fn) {
  const uint64_t units = c.used.size();
  for (uint64_t u = 0; u < units;) {
    if (!c.used[u]) {
      ++u;
      continue;
    }
    uint64_t v = u;
    for (;;) {
      while (v < units && c.used[v]) ++v;
      uint64_t w = v;
      while (w < units && !c.used[w] && (w - v) * unit < merge_gap) ++w;
      if (w == v || w == units || !c.used[w]) break;
      v = w;
    }
    VDKIT_RETURN_IF_ERROR(fn(u, v));
    u = v;
  }
  return Status::Ok();
}

Result<std::unique_ptr<ConvertSink>> make_raw_sink(int fd, const std::string& name, bool seekable, bool sync,
                                                   const TargetIo& io) {
  VDKIT_ASSIGN_OR_RETURN(int d, dup_fd(fd, name));
  if (seekable) return std::unique_ptr<ConvertSink>(new RawFileSink(TargetFile::Open(d, name, io), sync));
  return std::unique_ptr<ConvertSink>(new RawStreamSink(d, name));
}

std::unique_ptr<TargetFile> TargetFile::Open(int fd, const std::string& name, const TargetIo& io) {
  IoEngine* engine = io.engine ? io.engine : &default_sync_engine();
  auto direct = open_direct(fd, name, io);
  return std::unique_ptr<TargetFile>(new TargetFile(File::FromFd(fd, name, true, engine), direct));
}

void TargetFile::split(std::span<const IoRequest> reqs) {
  buffered_.clear();
  direct_reqs_.clear();
  for (const IoRequest& r : reqs) {
    auto* buf = static_cast<uint8_t*>(r.buf);
    uint64_t d = 0;
    if (direct_ && !direct_refused_ && direct_aligned(reinterpret_cast<uintptr_t>(buf)) && direct_aligned(r.offset))
      d = align_down(r.len, kDirectAlign);
    if (d) append_write(direct_reqs_, buf, d, r.offset, kDirectMaxWrite);
    if (d < r.len) append_write(buffered_, buf + d, r.len - d, r.offset + d, kBufferedMaxWrite);
  }
  if (direct_)
    for (IoRequest& r : direct_reqs_) r.fd = direct_->fd();
}

// The file system refused a direct write it said it takes (EINVAL): these
// requests, and every later write, go through the page cache instead. The
// direct descriptor stays open: writes still queued name it.
Status TargetFile::redo_buffered(std::span<const IoRequest> direct) {
  direct_refused_ = true;
  std::vector<IoRequest> again;
  for (const IoRequest& r : direct) append_write(again, static_cast<uint8_t*>(r.buf), r.len, r.offset, kBufferedMaxWrite);
  return again.empty() ? Status::Ok() : file_->Submit(again);
}

Status TargetFile::write(std::span<const IoRequest> reqs) {
  if (!started_.empty()) VDKIT_RETURN_IF_ERROR(settle(0));
  split(reqs);
  if (!direct_reqs_.empty()) {
    Status st = direct_->Submit(direct_reqs_);
    if (st.code() == EINVAL)
      VDKIT_RETURN_IF_ERROR(redo_buffered(direct_reqs_));
    else if (!st.ok())
      return st;
  }
  if (buffered_.empty()) return Status::Ok();
  return file_->Submit(buffered_);
}

Status TargetFile::write_async(std::span<const IoRequest> reqs) {
  split(reqs);
  if (!queue_) queue_ = direct_ ? direct_->engine().make_queue() : file_->engine().make_queue();
  started_.push_back(direct_reqs_);  // first: a failed push must not leave a batch in flight unrecorded
  queue_->start(direct_reqs_);
  if (buffered_.empty()) return Status::Ok();
  return file_->Submit(buffered_);
}

Status TargetFile::settle(size_t keep) {
  Status first;
  while (started_.size() > keep) {
    Status st = queue_->wait(started_.size() - 1).Context("'" + file_->path() + "'");
    if (st.code() == EINVAL && !started_.front().empty()) st = redo_buffered(started_.front());
    if (!st.ok() && first.ok()) first = st;
    started_.pop_front();
  }
  return first;
}

StreamWriter::~StreamWriter() { ::close(fd_); }

Status StreamWriter::write_all(const uint8_t* p, uint64_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd_, p, std::min<uint64_t>(n, 1u << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing to " + name_ + " at offset " + std::to_string(pos_));
    }
    p += w;
    n -= static_cast<uint64_t>(w);
    pos_ += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status StreamWriter::zeros_to(uint64_t end) {
  static const std::vector<uint8_t> zeros(1 << 20, 0);
  while (pos_ < end) VDKIT_RETURN_IF_ERROR(write_all(zeros.data(), std::min<uint64_t>(zeros.size(), end - pos_)));
  return Status::Ok();
}

}  // namespace vdkit
