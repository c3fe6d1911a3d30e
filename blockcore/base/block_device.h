// BlockDevice: the one raw-disk view every vdkit consumer (NBD, FUSE, fixups, convert) reads through.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit {

// What a range of the virtual disk is.
//  kData: stored somewhere in the chain; must be read.
//  kZero: known to read as zeros though the format records it (qcow2 zero
//         flag, VMDK GTE=1, a ZERO extent, a zero run found in data).
//  kHole: stored nowhere in the chain; reads as zeros.
// Both kZero and kHole read as zeros; consumers may skip both.
enum class ExtentType : uint8_t { kData = 0, kZero = 1, kHole = 2 };

const char* to_string(ExtentType t);

struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  ExtentType type = ExtentType::kData;
  bool operator==(const Extent&) const = default;
};

// Appends e to out, merging it with the last extent when they touch and agree.
void append_extent(std::vector<Extent>& out, const Extent& e);

// Describes an open image for `vdkit info` and the NBD export description.
struct ImageInfo {
  std::string filename;
  std::string format;          // "raw", "qcow2", "vmdk"
  std::string subformat;       // VMDK createType; empty otherwise
  uint64_t virtual_size = 0;
  uint64_t actual_size = 0;    // bytes allocated on disk by every file of this layer
  uint64_t cluster_size = 0;   // qcow2 cluster or VMDK grain size in bytes; 0 if none
  std::string compression;     // "", "zlib", "zstd", "deflate"
  int version = 0;             // format version (qcow2 2/3, VMDK 1/2/3)
  bool dirty = false;
  bool corrupt = false;
  std::vector<std::string> files;   // extent files / external data file, as resolved paths
  std::string backing_filename;     // as written in the image
  std::string backing_format;       // as written in the image (may be empty)
  std::string backing_resolved;     // the path that was opened
  std::shared_ptr<const ImageInfo> backing;  // the next image of the chain
  // Format-specific facts, shown as "key: value" lines and JSON strings.
  std::vector<std::pair<std::string, std::string>> specific;
  // What a reader should know about how this layer was read (a VHDX log replayed in memory), one sentence each.
  std::vector<std::string> warnings;
};

// The warnings of an image and of every image below it in its backing chain, top first.
std::vector<std::string> chain_warnings(const ImageInfo& top);

struct DeviceCaps {
  bool writable = false;
  bool can_zero = false;
  bool can_trim = false;
  bool can_flush = false;
  // Flush on one handle makes writes from every handle durable (NBD multi-conn).
  bool flush_consistent = true;
};

// Contract for every implementation:
//  - size() is fixed for the life of the device.
//  - read(): any offset and length (no alignment), offset+len <= size(),
//    else EINVAL. Fills buf completely or fails. Thread-safe: any number of
//    threads may read at once. The caller owns buf.
//  - extents(): appends runs covering exactly [offset, offset+length) in
//    order, contiguous, adjacent runs of one type merged. Thread-safe.
//  - write()/zero()/trim()/flush(): only when caps() says so; otherwise
//    EROFS. Writes may run concurrently with reads of other ranges.
// Errors carry an errno (EIO for I/O, EINVAL for corrupt metadata) and a
// message naming the file, field and offset.
class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size() const = 0;
  virtual Status read(uint64_t offset, std::span<uint8_t> buf) = 0;
  virtual Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) = 0;
  virtual DeviceCaps caps() const { return {}; }
  virtual Status write(uint64_t offset, std::span<const uint8_t> buf);
  virtual Status zero(uint64_t offset, uint64_t length);
  virtual Status trim(uint64_t offset, uint64_t length);
  virtual Status flush();
  // Hints that [offset, offset+length) will be read soon (NBD cache requests).
  virtual Status prefetch(uint64_t offset, uint64_t length);
  virtual const ImageInfo& info() const = 0;

 protected:
  // For implementations: EINVAL unless [offset, offset+len) lies inside the device.
  Status check_range(uint64_t offset, uint64_t len) const;
};

using BlockDevicePtr = std::unique_ptr<BlockDevice>;

}  // namespace vdkit
