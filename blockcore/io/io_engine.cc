// io_uring and pread/pwrite engines, and the File handle built on them.
#include "blockcore/io/io_engine.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

namespace vdkit {

Status Status::FromErrno(int err, const std::string& what) {
  return Status::Error(err, what + ": " + std::strerror(err));
}

Status IoEngine::fsync(int fd) {
  if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "fdatasync");
  return Status::Ok();
}

namespace {

std::string describe(const IoRequest& r) {
  return std::string(r.write ? "write" : "read") + " of " + std::to_string(r.len) + " bytes at offset " +
         std::to_string(r.offset);
}

// Runs one request with pread/pwrite, looping over short transfers.
Status run_sync(IoRequest& r) {
  size_t done = 0;
  while (done < r.len) {
    char* p = static_cast<char*>(r.buf) + done;
    ssize_t n = r.write ? ::pwrite(r.fd, p, r.len - done, static_cast<off_t>(r.offset + done))
                        : ::pread(r.fd, p, r.len - done, static_cast<off_t>(r.offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      r.result = -errno;
      return Status::FromErrno(errno, describe(r));
    }
    if (n == 0) {
      if (r.write) {
        r.result = -EIO;
        return Status::IoError(describe(r) + ": wrote nothing");
      }
      break;  // end of file
    }
    done += static_cast<size_t>(n);
  }
  r.result = static_cast<ssize_t>(done);
  return Status::Ok();
}

// Applies one completion (res: bytes, or -errno) to request r, of which `done`
// bytes were through. True when the rest must be submitted again (interrupted,
// or a short transfer); otherwise r is finished and, on error, r.result and
// `first` say why. A read stopped by end of file is finished, not an error.
bool apply_completion(IoRequest& r, size_t& done, int res, Status& first) {
  if (res == -EINTR || res == -EAGAIN) return true;
  if (res < 0) {
    r.result = res;
    if (first.ok()) first = Status::FromErrno(-res, describe(r));
    return false;
  }
  if (res == 0) {
    if (r.write) {
      r.result = -EIO;
      if (first.ok()) first = Status::IoError(describe(r) + ": wrote nothing");
    }
    return false;
  }
  done += static_cast<size_t>(res);
  return done < r.len;
}

// Fills sqe with what is left of r after `done` bytes (at most 1 GiB at a time).
void prep_rest(io_uring_sqe* sqe, const IoRequest& r, size_t done) {
  char* p = static_cast<char*>(r.buf) + done;
  unsigned n = static_cast<unsigned>(std::min<size_t>(r.len - done, 1u << 30));
  if (r.write)
    io_uring_prep_write(sqe, r.fd, p, n, r.offset + done);
  else
    io_uring_prep_read(sqe, r.fd, p, n, r.offset + done);
}

// Runs what is left of r after `done` bytes with pread/pwrite.
Status run_rest_sync(IoRequest& r, size_t& done) {
  IoRequest part = r;
  part.buf = static_cast<char*>(part.buf) + done;
  part.offset += done;
  part.len -= done;
  Status st = run_sync(part);
  if (part.result >= 0)
    done += static_cast<size_t>(part.result);
  else
    r.result = part.result;
  return st;
}

// Runs each batch to completion as it starts: the queue of engines that keep nothing in flight.
class SyncQueue final : public IoQueue {
 public:
  explicit SyncQueue(IoEngine& engine) : engine_(engine) {}
  void start(std::span<const IoRequest> reqs) override {
    std::vector<IoRequest> batch(reqs.begin(), reqs.end());
    results_.push_back(batch.empty() ? Status::Ok() : engine_.submit(batch));
  }
  Status wait(size_t keep) override {
    Status first;
    for (; results_.size() > keep; results_.pop_front())
      if (first.ok()) first = results_.front();
    return first;
  }
  size_t batches() const override { return results_.size(); }

 private:
  IoEngine& engine_;
  std::deque<Status> results_;
};

class SyncEngine final : public IoEngine {
 public:
  const char* name() const override { return "sync"; }
  Status submit(std::span<IoRequest> reqs) override {
    Status first;
    for (auto& r : reqs) {
      Status st = run_sync(r);
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  }
};

// One ring per thread. Rings are made on first use in that thread, so nothing
// exists before a fork, and destroyed when the thread exits.
constexpr unsigned kRingEntries = 64;

struct ThreadRing {
  io_uring ring{};
  bool ready = false;
  bool failed = false;
  ~ThreadRing() {
    if (ready) io_uring_queue_exit(&ring);
  }
  // Drops the ring for good (it refused work); unsubmitted entries die with it.
  void disable() {
    if (ready) io_uring_queue_exit(&ring);
    ready = false;
    failed = true;
  }
  io_uring* get() {
    if (ready) return &ring;
    if (failed) return nullptr;
    if (io_uring_queue_init(kRingEntries, &ring, 0) < 0) {
      failed = true;
      return nullptr;
    }
    ready = true;
    return &ring;
  }
};

thread_local ThreadRing t_ring;

// Batches in flight on a ring of their own (not the thread's ring, whose
// submit() would reap their completions). Each request is one operation until
// it is done; short and interrupted transfers go again for the rest.
class UringQueue final : public IoQueue {
 public:
  // A SyncQueue over `fallback` when no ring can be made.
  static std::unique_ptr<IoQueue> Make(IoEngine& fallback) {
    std::unique_ptr<UringQueue> q(new UringQueue);
    if (io_uring_queue_init(kRingEntries, &q->ring_, 0) < 0) return std::make_unique<SyncQueue>(fallback);
    q->ready_ = q->submitting_ = true;
    return q;
  }
  ~UringQueue() override {
    (void)wait(0);
    if (ready_) io_uring_queue_exit(&ring_);
  }

  void start(std::span<const IoRequest> reqs) override {
    auto b = std::make_unique<Batch>();
    b->reqs.assign(reqs.begin(), reqs.end());
    b->done.assign(reqs.size(), 0);
    b->ops.reserve(reqs.size());  // ops are pointed to by the ring: never reallocated
    for (size_t i = 0; i < reqs.size(); ++i) b->ops.push_back(Op{b.get(), i});
    Batch& batch = *b;
    batches_.push_back(std::move(b));  // owned before any pointer into it is kept
    for (size_t i = 0; i < batch.reqs.size(); ++i) {
      batch.reqs[i].result = 0;
      if (batch.reqs[i].len == 0) continue;
      pending_.push_back(&batch.ops[i]);
      ++batch.open;
    }
    pump();
  }

  Status wait(size_t keep) override {
    Status first;
    while (batches_.size() > keep) {
      Batch& b = *batches_.front();
      if (b.open == 0) {
        if (first.ok()) first = b.st;
        batches_.pop_front();
        continue;
      }
      reap();
    }
    return first;
  }
  size_t batches() const override { return batches_.size(); }

 private:
  struct Batch;
  struct Op {
    Batch* batch;
    size_t i;
  };
  struct Batch {
    std::vector<IoRequest> reqs;
    std::vector<size_t> done;
    std::vector<Op> ops;
    size_t open = 0;  // requests not finished
    Status st;        // the first error
  };

  UringQueue() = default;

  // Submits pending operations, as many as the ring holds, without waiting.
  void pump() {
    if (!submitting_) return run_pending_sync();
    std::vector<Op*> queued;
    while (!pending_.empty() && inflight_ + queued.size() < kRingEntries) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (!sqe) break;
      Op* op = pending_.front();
      pending_.pop_front();
      prep_rest(sqe, op->batch->reqs[op->i], op->batch->done[op->i]);
      io_uring_sqe_set_data(sqe, op);
      queued.push_back(op);
    }
    if (queued.empty()) return;
    int s;
    do {
      s = io_uring_submit(&ring_);
    } while (s == -EINTR);
    if (s >= 0) {
      inflight_ += static_cast<unsigned>(queued.size());
      return;
    }
    // The ring refuses work (e.g. a seccomp filter): what it took before still
    // completes on it, but these operations and all later ones run with
    // pwrite/pread. Their entries stay unsubmitted until the ring is torn down.
    submitting_ = false;
    pending_.insert(pending_.begin(), queued.begin(), queued.end());
    run_pending_sync();
  }

  void run_pending_sync() {
    for (; !pending_.empty(); pending_.pop_front()) {
      Op* op = pending_.front();
      Batch& b = *op->batch;
      Status st = run_rest_sync(b.reqs[op->i], b.done[op->i]);
      finish_op(*op, st);
    }
  }

  // Waits for at least one completion (submitting what is pending) and applies every one that is ready.
  void reap() {
    pump();
    if (inflight_ == 0) return;
    io_uring_cqe* cqe = nullptr;
    // Submits again what an earlier submission left in the ring (the kernel
    // may take fewer entries than offered), then waits.
    int w = submitting_ ? io_uring_submit_and_wait(&ring_, 1) : -EAGAIN;
    if (w < 0 && w != -EINTR) w = io_uring_wait_cqe(&ring_, &cqe);
    if (w == -EINTR) return;
    if (w < 0) {
      // The ring cannot tell what finished: nothing more goes on it.
      fail_inflight(Status::FromErrno(-w, "io_uring_wait_cqe"));
      return;
    }
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      Op* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
      Batch& b = *op->batch;
      Status st;
      if (apply_completion(b.reqs[op->i], b.done[op->i], cqe->res, st))
        pending_.push_back(op);
      else
        finish_op(*op, st);
    }
    io_uring_cq_advance(&ring_, seen);
    inflight_ -= seen;
  }

  void finish_op(Op& op, const Status& st) {
    Batch& b = *op.batch;
    IoRequest& r = b.reqs[op.i];
    if (r.result >= 0) r.result = static_cast<ssize_t>(b.done[op.i]);
    if (!st.ok() && b.st.ok()) b.st = st;
    --b.open;
  }

  // Closing the ring leaves the kernel to finish or cancel what it holds on
  // its own. Those are writes: they only read their buffers, so a caller that
  // reuses them after this error can spoil nothing but the failed target.
  void fail_inflight(const Status& why) {
    io_uring_queue_exit(&ring_);
    ready_ = submitting_ = false;
    inflight_ = 0;
    for (auto& b : batches_) {
      if (b->open == 0) continue;
      if (b->st.ok()) b->st = why;
      b->open = 0;
    }
    pending_.clear();
  }

  io_uring ring_{};
  bool ready_ = false;       // ring_ exists
  bool submitting_ = false;  // new operations go on the ring
  unsigned inflight_ = 0;
  std::deque<std::unique_ptr<Batch>> batches_;
  std::deque<Op*> pending_;
};

class UringEngine final : public IoEngine {
 public:
  const char* name() const override { return "io_uring"; }

  Status submit(std::span<IoRequest> reqs) override {
    io_uring* ring = t_ring.get();
    if (!ring) return sync_.submit(reqs);  // this thread could not get a ring
    // Per-request progress; user_data is the request index.
    std::vector<size_t> done(reqs.size(), 0);
    std::vector<size_t> pending;  // indexes still to submit
    pending.reserve(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      reqs[i].result = 0;
      if (reqs[i].len == 0) continue;
      pending.push_back(i);
    }
    Status first;
    size_t inflight = 0;
    size_t next = 0;
    while (next < pending.size() || inflight > 0) {
      // Fill the submission queue.
      unsigned queued = 0;
      while (next < pending.size()) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring);
        if (!sqe) break;
        size_t i = pending[next++];
        prep_rest(sqe, reqs[i], done[i]);
        io_uring_sqe_set_data64(sqe, i);
        ++queued;
      }
      io_uring_cqe* cqe = nullptr;
      if (queued) {
        // Submit and wait for one completion in a single system call.
        int s;
        do {
          s = io_uring_submit_and_wait(ring, 1);
        } while (s == -EINTR);  // nothing was consumed: the same entries go again
        if (s < 0) {
          // The ring refused work (e.g. a seccomp filter). Finish what is in
          // flight, then do the rest synchronously.
          return drain_then_sync(ring, reqs, done, pending, next - queued, inflight, first);
        }
        inflight += queued;
      } else {
        // Reap at least one completion, then everything that is ready; entries
        // an earlier submission left in the ring go with it.
        int w = io_uring_submit_and_wait(ring, 1);
        if (w < 0 && w != -EINTR) w = io_uring_wait_cqe(ring, &cqe);
        if (w == -EINTR) continue;
        if (w < 0) return Status::FromErrno(-w, "io_uring_wait_cqe");
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_for_each_cqe(ring, head, cqe) {
        ++seen;
        handle_cqe(cqe, reqs, done, pending, first);
      }
      io_uring_cq_advance(ring, seen);
      inflight -= seen;
    }
    for (size_t i : pending) {
      if (reqs[i].result >= 0) reqs[i].result = static_cast<ssize_t>(done[i]);
    }
    return first;
  }

 private:
  void handle_cqe(io_uring_cqe* cqe, std::span<IoRequest> reqs, std::vector<size_t>& done,
                  std::vector<size_t>& pending, Status& first) {
    size_t i = io_uring_cqe_get_data64(cqe);
    if (apply_completion(reqs[i], done[i], cqe->res, first)) pending.push_back(i);
  }

  Status drain_then_sync(io_uring* ring, std::span<IoRequest> reqs, std::vector<size_t>& done,
                         std::vector<size_t>& pending, size_t from, size_t inflight, Status first) {
    while (inflight > 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(ring, &cqe) < 0) break;
      handle_cqe(cqe, reqs, done, pending, first);
      io_uring_cqe_seen(ring, cqe);
      --inflight;
    }
    t_ring.disable();
    for (size_t k = from; k < pending.size(); ++k) {
      Status st = run_rest_sync(reqs[pending[k]], done[pending[k]]);
      if (!st.ok() && first.ok()) first = st;
    }
    for (size_t i : pending)
      if (reqs[i].result >= 0) reqs[i].result = static_cast<ssize_t>(done[i]);
    return first;
  }

  std::unique_ptr<IoQueue> make_queue() override { return UringQueue::Make(sync_); }

  SyncEngine sync_;
};

// Engines the front end chose from its settings (set_default_*); null until then.
std::atomic<IoEngine*> g_override{nullptr};
std::atomic<IoEngine*> g_sync_override{nullptr};

}  // namespace

std::unique_ptr<IoQueue> IoEngine::make_queue() { return std::make_unique<SyncQueue>(*this); }

std::unique_ptr<IoEngine> make_sync_engine() { return std::make_unique<SyncEngine>(); }

std::unique_ptr<IoEngine> make_uring_engine() {
  // Probe once in this thread: can a ring be made and does it accept a read?
  io_uring ring;
  if (io_uring_queue_init(4, &ring, 0) < 0) return nullptr;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
            io_uring_opcode_supported(probe, IORING_OP_WRITE);
  if (probe) io_uring_free_probe(probe);
  io_uring_queue_exit(&ring);
  if (!ok) return nullptr;
  return std::make_unique<UringEngine>();
}

IoEngine& default_io_engine() {
  if (IoEngine* e = g_override.load(std::memory_order_acquire)) return *e;
  // Made on first use, after any fork: io_uring when this kernel and memlock limit give a ring.
  static IoEngine* fallback = [] {
    if (auto e = make_uring_engine()) return e.release();
    return make_sync_engine().release();
  }();
  return *fallback;
}

IoEngine& default_sync_engine() {
  if (IoEngine* e = g_sync_override.load(std::memory_order_acquire)) return *e;
  static IoEngine* fallback = make_sync_engine().release();
  return *fallback;
}

void set_default_sync_engine(IoEngine* engine) { g_sync_override.store(engine, std::memory_order_release); }

void set_default_io_engine(IoEngine* engine) { g_override.store(engine, std::memory_order_release); }

// ---- File ----

Result<std::shared_ptr<File>> File::Open(const std::string& path, Mode mode, IoEngine* engine) {
  int flags = O_CLOEXEC;
  switch (mode) {
    case Mode::kReadOnly: flags |= O_RDONLY; break;
    case Mode::kReadWrite: flags |= O_RDWR; break;
    case Mode::kCreate: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    case Mode::kCreateOrTruncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
  }
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return Status::FromErrno(errno, "cannot open '" + path + "'");
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::Error(EISDIR, "'" + path + "' is a directory, not an image");
  }
  return std::shared_ptr<File>(new File(fd, path, mode != Mode::kReadOnly, engine));
}

std::shared_ptr<File> File::FromFd(int fd, std::string name, bool writable, IoEngine* engine) {
  return std::shared_ptr<File>(new File(fd, std::move(name), writable, engine));
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

Status File::ReadExact(uint64_t offset, void* buf, size_t len) const {
  VDKIT_ASSIGN_OR_RETURN(size_t n, ReadSome(offset, buf, len));
  if (n != len)
    return Status::IoError("'" + path_ + "': read of " + std::to_string(len) + " bytes at offset " +
                           std::to_string(offset) + " goes past the end of the file");
  return Status::Ok();
}

Result<size_t> File::ReadSome(uint64_t offset, void* buf, size_t len) const {
  IoRequest r{fd_, buf, len, offset, false, 0};
  Status st = (engine_ ? *engine_ : default_io_engine()).submit(std::span<IoRequest>(&r, 1));
  if (!st.ok()) return st.Context("'" + path_ + "'");
  return static_cast<size_t>(r.result);
}

Status File::WriteExact(uint64_t offset, const void* buf, size_t len) const {
  IoRequest r{fd_, const_cast<void*>(buf), len, offset, true, 0};
  Status st = (engine_ ? *engine_ : default_io_engine()).submit(std::span<IoRequest>(&r, 1));
  return st.Context("'" + path_ + "'");
}

Status File::Submit(std::span<IoRequest> reqs) const {
  for (auto& r : reqs) r.fd = fd_;
  return (engine_ ? *engine_ : default_io_engine()).submit(reqs).Context("'" + path_ + "'");
}

Status File::Sync() const { return (engine_ ? *engine_ : default_io_engine()).fsync(fd_).Context("'" + path_ + "'"); }

Status File::Truncate(uint64_t size) const {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Status::FromErrno(errno, "ftruncate '" + path_ + "'");
  return Status::Ok();
}

Status File::PunchHole(uint64_t offset, uint64_t len) const {
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) != 0)
    return Status::FromErrno(errno, "punching a hole in '" + path_ + "'");
  return Status::Ok();
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat '" + path_ + "'");
  if (S_ISBLK(st.st_mode)) {
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return Status::FromErrno(errno, "size of block device '" + path_ + "'");
    return static_cast<uint64_t>(end);
  }
  return static_cast<uint64_t>(st.st_size);
}

uint64_t File::AllocatedBytes() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

Status File::DataRuns(uint64_t offset, uint64_t len, std::vector<std::pair<uint64_t, uint64_t>>& out) const {
  uint64_t end = offset + len;
  uint64_t pos = offset;
  while (pos < end) {
    off_t d = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO) break;  // no more data before end of file
      // The file system cannot tell: treat everything as data.
      out.emplace_back(pos, end);
      return Status::Ok();
    }
    if (static_cast<uint64_t>(d) >= end) break;
    off_t h = ::lseek(fd_, d, SEEK_HOLE);
    if (h < 0) h = static_cast<off_t>(end);
    uint64_t run_end = std::min<uint64_t>(static_cast<uint64_t>(h), end);
    out.emplace_back(static_cast<uint64_t>(d), run_end);
    pos = run_end;
  }
  return Status::Ok();
}

}  // namespace vdkit
