// The raw target: a sparse file written only where data is, or an in-order stream (zeros written out) to a pipe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockcore/convert.h"

namespace vdkit {

// Writes a pipe front to back, counting bytes; owns fd. Shared by the raw and qcow2 stream sinks.
class StreamWriter {
 public:
  StreamWriter(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  Status write_all(const uint8_t* p, uint64_t n);
  Status write_all(const std::vector<uint8_t>& b) { return write_all(b.data(), b.size()); }
  // Writes zeros up to byte `end` of the stream.
  Status zeros_to(uint64_t end);
  uint64_t pos() const { return pos_; }

 private:
  int fd_;
  std::string name_;
  uint64_t pos_ = 0;
};

// fd: the target, owned by the caller (the sink works on a duplicate).
// seekable: a regular file at offset 0, sized with ftruncate and written only
// where data is (holes stay holes); otherwise bytes are written in order,
// zeros included, as a pipe needs. sync: fdatasync in finish().
Result<std::unique_ptr<ConvertSink>> make_raw_sink(int fd, const std::string& name, bool seekable, bool sync);

}  // namespace vdkit
