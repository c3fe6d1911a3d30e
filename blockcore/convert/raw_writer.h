// The raw target: a sparse file written only where data is, or an in-order stream (zeros written out) to a pipe.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "blockcore/convert/convert.h"
#include "blockcore/io/io_engine.h"

namespace vdkit {

// Bytes written front to back: a pipe (StreamWriter), or a device or export
// written in order (target_sinks.cc), for the qcow2 laid out in advance.
class SequentialOut {
 public:
  virtual ~SequentialOut() = default;
  virtual Status write_all(const uint8_t* p, uint64_t n) = 0;
  Status write_all(const std::vector<uint8_t>& b) { return write_all(b.data(), b.size()); }
  // Writes zeros up to byte `end` of the output.
  virtual Status zeros_to(uint64_t end) = 0;
  virtual uint64_t pos() const = 0;
  // Positional outputs only: go on writing at `pos` (a resumed run).
  virtual Status seek(uint64_t /*pos*/) { return Status::Unsupported("cannot seek on a stream"); }
  // Positional outputs only: writes b at offset `off`, outside the sequence.
  virtual Status write_at(uint64_t /*off*/, const std::vector<uint8_t>& /*b*/) {
    return Status::Unsupported("cannot write back on a stream");
  }
  // Everything written so far reaches the output (and stable storage where it has any).
  virtual Status flush() { return Status::Ok(); }
};

// Writes a pipe front to back, counting bytes; owns fd. Shared by the raw and qcow2 stream sinks.
class StreamWriter final : public SequentialOut {
 public:
  StreamWriter(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  ~StreamWriter() override;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  using SequentialOut::write_all;
  Status write_all(const uint8_t* p, uint64_t n) override;
  Status zeros_to(uint64_t end) override;
  uint64_t pos() const override { return pos_; }

 private:
  int fd_;
  std::string name_;
  uint64_t pos_ = 0;
};

// A seekable target file, shared by the raw and qcow2 file sinks. Writes whose
// buffer, offset and length are 4 KiB aligned go down with O_DIRECT when the
// file system takes them (statx STATX_DIOALIGN), the rest through the page
// cache; both through the TargetIo's engine, so injected faults reach them.
// Direct writes skip the copy of every byte into fresh page-cache pages, which
// was most of a raw target's time (bench/RESULTS.md, "write path").
// TargetIo::direct = false sends every write through the page cache.
// The file sinks' chunks whose direct writes may be on the device at once
// (ConvertSink::puts_in_flight). With one, the device sat idle while each
// chunk's completion came back and the next chunk's writes were issued.
inline constexpr size_t kFileChunksInFlight = 2;

class TargetFile {
 public:
  // Takes ownership of fd.
  static std::unique_ptr<TargetFile> Open(int fd, const std::string& name, const TargetIo& io);
  // Writes every request (fd ignored); requests must not overlap in the file
  // (direct ones go first). Requests adjacent both in memory and in the file
  // are merged into one.
  Status write(std::span<const IoRequest> reqs);
  // The same, except that the O_DIRECT writes may still be in flight on
  // return (through the engine's IoQueue), so the device works while the
  // caller fetches its next chunk. The buffers must stay untouched until
  // settle() has retired this call. Every call counts, even with nothing to write.
  Status write_async(std::span<const IoRequest> reqs);
  // Retires the oldest write_async() calls until at most `keep` may still be
  // in flight; the first error among them. write() retires them all first.
  Status settle(size_t keep);
  // The buffered handle: truncate, sync (fdatasync covers direct writes too).
  // Call settle(0) before truncating or syncing after write_async().
  const File& file() const { return *file_; }
  bool direct() const { return direct_ != nullptr && !direct_refused_; }

 private:
  TargetFile(std::shared_ptr<File> file, std::shared_ptr<File> direct)
      : file_(std::move(file)), direct_(std::move(direct)) {}
  // Splits reqs into direct_reqs_ (aligned parts, when direct_) and buffered_.
  void split(std::span<const IoRequest> reqs);
  Status redo_buffered(std::span<const IoRequest> direct);

  std::shared_ptr<File> file_;
  std::shared_ptr<File> direct_;  // the same file opened O_DIRECT, or null
  bool direct_refused_ = false;   // a direct write failed with EINVAL: the page cache from then on
  std::vector<IoRequest> buffered_;
  std::vector<IoRequest> direct_reqs_;
  // Made on the first write_async(); destroyed first, waiting for what is in flight.
  std::unique_ptr<IoQueue> queue_;
  std::deque<std::vector<IoRequest>> started_;  // the direct part of each write_async() not yet retired
};

// Calls fn(first, end) for each run [first, end) of used units of c (units
// of `unit` bytes), in order. An unused gap shorter than merge_gap bytes with
// a used unit after it inside the chunk is taken into the run (the chunk
// holds its zeros): one write instead of two (0: never merge). Stops at the
// first error fn returns.
Status for_each_used_run(const ConvertChunk& c, uint64_t unit, uint64_t merge_gap,
                         const std::function<Status(uint64_t first, uint64_t end)>& fn);

// fd: the target, owned by the caller (the sink works on a duplicate).
// seekable: a regular file at offset 0, sized with ftruncate and written only
// where data is (holes stay holes) through a TargetFile; otherwise bytes are
// written in order, zeros included, as a pipe needs. sync: fdatasync in finish().
Result<std::unique_ptr<ConvertSink>> make_raw_sink(int fd, const std::string& name, bool seekable, bool sync,
                                                   const TargetIo& io = {});

}  // namespace vdkit
