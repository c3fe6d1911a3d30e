// Internal to the XVA source: bytes read front to back (a file, a pipe, gzip or zstd of either) and a tar reader.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::xva {

// Named limits for what a tar may ask of us.
inline constexpr uint64_t kMaxNameBytes = 4096;           // a member name (GNU long name, pax path)
inline constexpr uint64_t kMaxPaxHeaderBytes = 64u << 10;  // a pax extended header read into memory

// A byte stream read once, front to back. position() counts bytes of the (decompressed) stream.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes; fewer only at the end of the stream (0 there).
  virtual Result<size_t> read(uint8_t* p, size_t n) = 0;
  // Skips n bytes (a seek for an uncompressed file, reading otherwise). Past the end is an error.
  virtual Status skip(uint64_t n);
  virtual uint64_t position() const = 0;
  // Whether position() is an offset in the file named, so data can later be read from there (uncompressed files).
  virtual bool positions_are_file_offsets() const { return false; }
  virtual const char* compression() const { return ""; }
  Status read_exact(uint8_t* p, size_t n, const std::string& what);
};

enum class Compression { kNone, kGzip, kZstd };

// The compression a stream starts with (gzip 1f 8b, zstd 28 b5 2f fd).
Compression detect_compression(const uint8_t* head, size_t n);

// A byte source over fd (owned by the caller; a pipe or a file read from its current offset), decompressing gzip
// or zstd when the first bytes say so. `seekable`: fd is a regular file at offset 0 (skips become seeks and
// uncompressed positions are file offsets). cancel ends a read interrupted by a signal with ECANCELED.
Result<std::unique_ptr<ByteSource>> open_byte_source(int fd, const std::string& name, bool seekable,
                                                     const std::atomic<bool>* cancel = nullptr);

struct TarEntry {
  std::string name;
  uint64_t size = 0;
  char type = '0';           // '0' or '\0' regular file, '5' folder, ...
  uint64_t data_offset = 0;  // position of the first data byte in the stream
  uint64_t header_offset = 0;
};

// Reads a ustar/GNU/pax tar front to back. GNU long names ('L') and pax 'path'/'size' records apply to the next
// member; every header's checksum is checked.
class TarReader {
 public:
  TarReader(ByteSource& src, std::string name) : src_(src), name_(std::move(name)) {}
  // The next member, or false at the end-of-archive block (a stream that simply stops is truncated: an error).
  // The data of the previous member is skipped if it was not read.
  Result<bool> next(TarEntry& e);
  // Reads the current member's data (at most its size, in order); then next() skips only the padding.
  Status read_data(uint8_t* p, size_t n);
  const std::string& name() const { return name_; }

 private:
  Status skip_rest();
  ByteSource& src_;
  std::string name_;
  uint64_t left_ = 0;     // data bytes of the current member not yet read
  uint64_t padding_ = 0;  // padding after them
};

}  // namespace vdkit::xva
