// NBD export targets: writes and zero requests queued to one worker per connection (several with multi-conn), flushed
// on every connection; with multi-conn, write-back flushes on a connection of their own while the data goes.
#include <libnbd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "blockcore/base/checked.h"
#include "blockcore/convert/output_target.h"
#include "blockcore/sources/nbd_handle.h"

namespace vdkit {

namespace {

// Writes are cut to this size (or the server's maximum, if smaller): big
// enough to cost little per request, small enough to spread one chunk over
// several connections.
constexpr uint64_t kNbdWritePiece = 1u << 20;
// A zero request covers at most this much (the NBD length field is 32-bit).
constexpr uint64_t kNbdMaxZero = 1ull << 30;
// With multi-conn, a flush on a connection of its own is started (and not
// waited for) after each this many bytes written: a server that writes into
// its page cache then writes back while the data is still coming, and the
// flush at the end finds little left to do (about 0.2 s of the 0.6 s of the
// guest's conversion onto nbdkit's file plugin was that last flush; every
// 32 MiB measured a little faster than 64, and 128 slower).
constexpr uint64_t kWritebackBytes = 32u << 20;

struct Job {
  uint64_t offset = 0;
  uint64_t length = 0;
  const uint8_t* data = nullptr;  // the caller's buffer, valid until write() returns; null: a zero request
};

class NbdTarget final : public OutputTarget {
 public:
  // flusher: a connection for the write-back flushes only (multi-conn), or null.
  NbdTarget(std::string uri, std::vector<NbdHandlePtr> handles, NbdHandlePtr flusher, uint64_t size)
      : uri_(std::move(uri)), size_(size) {
    nbd_handle* h = handles.front().get();
    can_zero_ = nbd_can_zero(h) == 1;
    can_fast_zero_ = nbd_can_fast_zero(h) == 1;
    can_flush_ = nbd_can_flush(h) == 1;
    int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);
    piece_ = max > 0 ? std::min<uint64_t>(kNbdWritePiece, static_cast<uint64_t>(max)) : kNbdWritePiece;
    for (auto& hp : handles) {
      auto c = std::make_unique<Conn>();
      c->h = std::move(hp);
      conns_.push_back(std::move(c));
    }
    for (auto& c : conns_) c->worker = std::thread([this, conn = c.get()] { work(*conn); });
    if (flusher && can_flush_) {
      flusher_h_ = std::move(flusher);
      flusher_ = std::thread([this] { write_back(); });
    }
  }

  ~NbdTarget() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& c : conns_) c->worker.join();
    if (flusher_.joinable()) flusher_.join();
  }

  const std::string& name() const override { return uri_; }
  uint64_t size() const override { return size_; }

  Status write(std::span<const IoRequest> reqs) override {
    for (const IoRequest& r : reqs) {
      if (!range_within(r.offset, r.len, size_))
        return Status::Error(ENOSPC, "'" + uri_ + "': a write at offset " + std::to_string(r.offset) +
                                         " would pass the end of the export");
      const auto* p = static_cast<const uint8_t*>(r.buf);
      for (uint64_t done = 0; done < r.len;) {
        uint64_t n = std::min(piece_, r.len - done);
        Job j;
        j.offset = r.offset + done;
        j.length = n;
        j.data = p + done;
        if (Status st = enqueue(j); !st.ok()) {
          (void)wait_idle();  // pieces already queued still read the caller's buffer
          return st;
        }
        done += n;
      }
    }
    // The pieces point into the caller's buffer, which is reused once this returns: wait for their answers rather
    // than copy every byte (a copy of all the disk's data costs CPU the conversion needs, while the wait is hidden
    // by the pipeline's read-ahead).
    VDKIT_RETURN_IF_ERROR(wait_idle());
    for (const IoRequest& r : reqs) unflushed_ += r.len;
    if (flusher_.joinable() && unflushed_ >= kWritebackBytes) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!flushing_) {  // one at a time: the next one covers whatever came meanwhile
        flushing_ = true;
        unflushed_ = 0;
        work_cv_.notify_all();
      }
    }
    return Status::Ok();
  }

  Status zero(uint64_t offset, uint64_t length) override {
    if (!range_within(offset, length, size_))
      return Status::Error(ENOSPC, "'" + uri_ + "': zeroing past the end of the export");
    for (uint64_t done = 0; done < length;) {
      uint64_t n = std::min(kNbdMaxZero, length - done);
      Job j;
      j.offset = offset + done;
      j.length = n;
      VDKIT_RETURN_IF_ERROR(enqueue(j));
      done += n;
    }
    return Status::Ok();
  }

  Status flush() override {
    VDKIT_RETURN_IF_ERROR(wait_idle());
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return !flushing_; });
      unflushed_ = 0;
      // A write-back flush that failed meanwhile: the flushes below could
      // succeed though data was lost (a server reports a write-back error once).
      if (!error_.ok()) return error_;
    }
    if (!can_flush_) return Status::Ok();
    // With multi-conn one flush would do; a flush per connection is right either way.
    for (auto& c : conns_) {
      if (nbd_flush(c->h.get(), 0) == -1) {
        int err = nbd_get_errno();
        return Status::Error(err ? err : EIO, "'" + uri_ + "': flush: " + nbd_error_text());
      }
    }
    return Status::Ok();
  }

 private:
  struct Conn {
    NbdHandlePtr h;
    std::thread worker;
    std::deque<Job> queue;
  };

  // Hands a job to the next connection; after a failure, refuses with it.
  Status enqueue(const Job& j) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_.ok()) return error_;
      ++busy_;
      conns_[next_]->queue.push_back(j);
      next_ = (next_ + 1) % conns_.size();
    }
    work_cv_.notify_all();
    return Status::Ok();
  }

  // Waits until every queued job is answered; the first error, if any.
  Status wait_idle() {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return busy_ == 0; });
    return error_;
  }

  void work(Conn& c) {
    for (;;) {
      Job j;
      {
        std::unique_lock<std::mutex> lk(mu_);
        work_cv_.wait(lk, [&] { return stop_ || !c.queue.empty(); });
        if (c.queue.empty()) return;
        j = std::move(c.queue.front());
        c.queue.pop_front();
      }
      Status st = run(c.h.get(), j);
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (!st.ok() && error_.ok()) error_ = st;
        --busy_;
      }
      done_cv_.notify_all();
    }
  }

  // The write-back flushes: each covers the writes answered before it (multi-conn), so the server writes them out
  // while later ones still arrive. A failure is the run's error, as it would be at the flush at the end.
  void write_back() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        work_cv_.wait(lk, [&] { return stop_ || flushing_; });
        if (stop_) return;  // closing (after an error or a signal): no flush is worth waiting for
      }
      Status st;
      if (nbd_flush(flusher_h_.get(), 0) == -1) {
        int err = nbd_get_errno();
        st = Status::Error(err ? err : EIO, "'" + uri_ + "': write-back flush: " + nbd_error_text());
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (!st.ok() && error_.ok()) error_ = st;
        flushing_ = false;
      }
      done_cv_.notify_all();
    }
  }

  Status run(nbd_handle* h, const Job& j) {
    // After a failure nothing more is sent: the run stops at the first error.
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_.ok()) return Status::Ok();
    }
    if (j.data) {
      if (nbd_pwrite(h, j.data, j.length, j.offset, 0) == -1) return failed("write", j);
      return Status::Ok();
    }
    if (can_zero_) {
      if (can_fast_zero_.load()) {
        if (nbd_zero(h, j.length, j.offset, LIBNBD_CMD_FLAG_FAST_ZERO) != -1) return Status::Ok();
        // ENOTSUP: this server cannot zero faster than by writing; ask plainly from now on.
        if (nbd_get_errno() == ENOTSUP) can_fast_zero_.store(false);
      }
      // Without the fast flag the server zeroes however it can (writing zeros
      // itself), which still spares the wire.
      if (nbd_zero(h, j.length, j.offset, 0) != -1) return Status::Ok();
      return failed("zero", j);
    }
    static const std::vector<uint8_t> zeros(kNbdWritePiece, 0);
    for (uint64_t done = 0; done < j.length;) {
      uint64_t n = std::min<uint64_t>(std::min(piece_, zeros.size()), j.length - done);
      if (nbd_pwrite(h, zeros.data(), n, j.offset + done, 0) == -1) return failed("write of zeros", j);
      done += n;
    }
    return Status::Ok();
  }

  Status failed(const char* what, const Job& j) const {
    int err = nbd_get_errno();
    return Status::Error(err ? err : EIO, "'" + uri_ + "': " + what + " of " + std::to_string(j.length) +
                                              " bytes at offset " + std::to_string(j.offset) + ": " + nbd_error_text());
  }

  std::string uri_;
  uint64_t size_;
  uint64_t piece_ = kNbdWritePiece;
  bool can_zero_ = false, can_flush_ = false;
  std::atomic<bool> can_fast_zero_{false};
  std::vector<std::unique_ptr<Conn>> conns_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  bool stop_ = false;
  uint64_t busy_ = 0;
  NbdHandlePtr flusher_h_;
  std::thread flusher_;
  bool flushing_ = false;    // a write-back flush is asked for or running (under mu_)
  uint64_t unflushed_ = 0;   // bytes written since the last write-back flush began (the caller's thread)
  size_t next_ = 0;
  Status error_;
};

}  // namespace

Result<std::unique_ptr<OutputTarget>> open_nbd_target(const std::string& uri, unsigned connections) {
  VDKIT_ASSIGN_OR_RETURN(NbdHandlePtr first, nbd_connect(uri, false));
  if (nbd_is_read_only(first.get()) == 1) return Status::Error(EROFS, "the NBD export '" + uri + "' is read-only");
  int64_t size = nbd_get_size(first.get());
  if (size < 0) return Status::IoError("'" + uri + "': cannot get the export size: " + nbd_error_text());
  const bool multi = nbd_can_multi_conn(first.get()) == 1;
  std::vector<NbdHandlePtr> handles;
  handles.push_back(std::move(first));
  // More connections only where the server promises a flush on one covers
  // them all; a server may also cap connections, and one is enough.
  for (unsigned i = 1; multi && i < connections; ++i) {
    auto h = nbd_connect_more(uri, false, kMoreConnectionMs);
    if (!h.ok()) break;
    handles.push_back(std::move(h).value());
  }
  // With three or more, the last one sends the write-back flushes rather than
  // data (writes measured as fast on 2 to 16 connections, and a connection
  // past a server's cap costs the wait of nbd_connect_more).
  NbdHandlePtr flusher;
  if (handles.size() >= 3) {
    flusher = std::move(handles.back());
    handles.pop_back();
  }
  return std::unique_ptr<OutputTarget>(
      new NbdTarget(uri, std::move(handles), std::move(flusher), static_cast<uint64_t>(size)));
}

}  // namespace vdkit
