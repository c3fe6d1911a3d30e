// The OS file I/O behind one interface: an io_uring engine, a pread/pwrite engine, and File, the handle drivers use.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit {

// One positional transfer. The engine fills `result`: bytes transferred, or -errno.
struct IoRequest {
  int fd = -1;
  void* buf = nullptr;
  size_t len = 0;
  uint64_t offset = 0;
  bool write = false;
  ssize_t result = 0;
};

// Writes that may still be in flight when start() returns, for one thread: a
// writer keeps the device busy while it waits for its next chunk. Batches
// finish in the order they were started, as far as wait() tells; writes of
// batches in flight together must not overlap (nothing orders them).
// Fault-injecting engines give the default queue, which runs every batch at once.
class IoQueue {
 public:
  // Waits for everything in flight (errors are dropped: call wait(0) first to see them).
  virtual ~IoQueue() = default;
  // Starts the requests (the list is copied; fd, buf, len, offset as for
  // IoEngine::submit). Their buffers must stay untouched until a wait() that
  // retires this batch returns. An empty list is a batch that is done at once.
  virtual void start(std::span<const IoRequest> reqs) = 0;
  // Retires the oldest batches until at most `keep` are left, waiting for them
  // as needed. Returns the first error among the batches it retired.
  virtual Status wait(size_t keep) = 0;
  virtual size_t batches() const = 0;
};

// Contract: submit() runs every request to completion before returning. Short
// transfers are resubmitted for the remainder; a read that reaches end of file
// stops there (result < len, not an error). The returned Status is the first
// failure (its message names the offset); every request's `result` is set.
// Engines are thread-safe: each thread gets its own ring.
class IoEngine {
 public:
  virtual ~IoEngine() = default;
  virtual const char* name() const = 0;
  virtual Status submit(std::span<IoRequest> reqs) = 0;
  virtual Status fsync(int fd);
  // A queue whose batches go through this engine. By default each batch runs
  // to completion in start() (through submit(), so wrappers such as fault
  // injection see it); io_uring keeps them in flight on a ring of the queue's own.
  virtual std::unique_ptr<IoQueue> make_queue();
};

// pread/pwrite in a loop; always available.
std::unique_ptr<IoEngine> make_sync_engine();
// io_uring with one lazily made ring per calling thread (so nothing is created
// before nbdkit forks). A thread whose ring cannot be made (old kernel, memlock
// limit, seccomp) uses pread/pwrite instead. Null when io_uring is unusable here.
std::unique_ptr<IoEngine> make_uring_engine();

// The process-wide engines, for callers that pass no engine of their own. The
// library reads no environment: a front end (the CLI, the nbdkit plugin) turns
// its settings into engines once and installs them with set_default_*; until
// then default_io_engine() is io_uring when a ring can be made, else
// pread/pwrite, and default_sync_engine() is pread/pwrite (buffered sequential
// writes, where io_uring gains nothing).
IoEngine& default_io_engine();
IoEngine& default_sync_engine();
// Replace the process-wide engines (front ends, tests, fault injection). Not
// thread-safe with concurrent I/O; call before opening images. Null restores
// the built-in choice. The engine must outlive every File that uses it.
void set_default_io_engine(IoEngine* engine);
void set_default_sync_engine(IoEngine* engine);

// An open file. Thread-safe for concurrent reads and writes at distinct offsets.
class File {
 public:
  enum class Mode { kReadOnly, kReadWrite, kCreate /* O_CREAT|O_EXCL, rw */, kCreateOrTruncate };

  static Result<std::shared_ptr<File>> Open(const std::string& path, Mode mode = Mode::kReadOnly,
                                            IoEngine* engine = nullptr);
  // Wraps an fd the caller owns the lifetime of transferring to File (closed on destruction).
  static std::shared_ptr<File> FromFd(int fd, std::string name, bool writable, IoEngine* engine = nullptr);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Reads exactly len bytes; reaching end of file first is an error naming the offset.
  Status ReadExact(uint64_t offset, void* buf, size_t len) const;
  // Reads up to len bytes; returns how many (fewer only at end of file).
  Result<size_t> ReadSome(uint64_t offset, void* buf, size_t len) const;
  Status WriteExact(uint64_t offset, const void* buf, size_t len) const;
  // Several transfers at once (queue depth for io_uring).
  Status Submit(std::span<IoRequest> reqs) const;
  Status Sync() const;
  Status Truncate(uint64_t size) const;
  // Deallocates a range (FALLOC_FL_PUNCH_HOLE); ENOTSUP when the file system cannot.
  Status PunchHole(uint64_t offset, uint64_t len) const;

  Result<uint64_t> Size() const;
  // Bytes the file occupies on disk (st_blocks * 512).
  uint64_t AllocatedBytes() const;
  // Runs of [start, end) that hold data inside [offset, offset+len), from
  // SEEK_DATA/SEEK_HOLE; the whole range when the file system cannot tell.
  Status DataRuns(uint64_t offset, uint64_t len, std::vector<std::pair<uint64_t, uint64_t>>& out) const;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool writable() const { return writable_; }
  IoEngine& engine() const { return *engine_; }

 private:
  File(int fd, std::string path, bool writable, IoEngine* engine)
      : fd_(fd), path_(std::move(path)), writable_(writable), engine_(engine) {}
  int fd_;
  std::string path_;
  bool writable_;
  IoEngine* engine_;
};

}  // namespace vdkit
