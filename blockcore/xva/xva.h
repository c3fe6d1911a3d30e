// XVA (XenServer/XCP-ng `xe vm-export`): a tar of ova.xml and, per disk, a folder `Ref:NN/` of numbered 1 MiB
// chunks each followed by its `.checksum` (SHA-1, hex) or `.xxhash` (xxh64, hex). Missing chunk numbers are zeros.
//
// Two ways in: front to back (a pipe or a file, plain, gzip or zstd), where each disk is a StreamSource for the
// convert pipeline and every chunk's checksum is checked before its bytes are handed on; and random access to an
// uncompressed file through an index of chunk offsets (for info, map, NBD, mount, inspect, fixup), where a chunk is
// checked the first time it is read.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/io/io_engine.h"
#include "blockcore/sources/stream_source.h"
#include "blockcore/xva/ova_xml.h"
#include "blockcore/xva/tar_reader.h"

namespace vdkit::xva {

inline constexpr uint64_t kChunkBytes = 1u << 20;
inline constexpr uint64_t kMaxChecksumFileBytes = 256;

// Reads an XVA front to back: ova.xml first, then chunks in archive order.
class XvaStreamReader {
 public:
  // Reads up to and including ova.xml (which must be the first member).
  static Result<std::unique_ptr<XvaStreamReader>> open(std::unique_ptr<ByteSource> src, const std::string& name);
  const XvaManifest& manifest() const { return manifest_; }
  const std::string& name() const { return name_; }
  const char* compression() const { return src_->compression(); }

  struct Chunk {
    size_t disk = 0;  // index into manifest().disks
    uint64_t number = 0;
    std::vector<uint8_t> data;
  };
  // The next chunk of any listed disk, its checksum checked; false at the end of the archive. Members that are
  // not chunks of a listed disk are skipped. `peek` leaves it to be taken again.
  Result<bool> next(Chunk*& out, bool peek);
  uint64_t bytes_read() const { return src_->position(); }
  // The archive, positioned after ova.xml until next() is first called (the random-access index reads it).
  TarReader& tar() { return tar_; }

 private:
  XvaStreamReader(std::unique_ptr<ByteSource> src, std::string name)
      : src_(std::move(src)), name_(std::move(name)), tar_(*src_, name_) {}
  std::unique_ptr<ByteSource> src_;
  std::string name_;
  TarReader tar_;
  XvaManifest manifest_;
  Chunk pending_;
  bool have_pending_ = false;
  bool ended_ = false;
};

// Disk `disk` of the reader as a stream for convert_stream: its chunks must come in increasing order and
// together (no chunk of another disk in between). Ends at the first chunk of another disk or the archive's end.
std::unique_ptr<StreamSource> disk_stream(XvaStreamReader& reader, size_t disk);

// Checks a chunk against its checksum file's text (SHA-1 or xxh64 in hex, `kind` "checksum" or "xxhash").
Status verify_chunk(const uint8_t* data, size_t len, const std::string& kind, const std::string& want,
                    const std::string& what);

// For probing: whether fd (a gzip or zstd file) decompresses to a tar whose first member is ova.xml.
bool is_compressed_xva(int fd);

// Random access to disk `disk` of an uncompressed XVA file (a compressed one is refused with a message that says
// to stream it through `vdkit convert`).
Result<BlockDevicePtr> open_xva_disk(std::shared_ptr<File> file, size_t disk);

// How many disks an uncompressed XVA file holds (ova.xml's disk VBDs).
Result<size_t> xva_disk_count(const std::string& path);

}  // namespace vdkit::xva
