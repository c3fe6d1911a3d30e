// Internal to the VHDX driver: the on-disk structures of Microsoft's "VHDX Format Specification" v1.0, checked.
//
// Layout (little-endian): the file identifier at 0, two headers at 64 KiB and 128 KiB (CRC-32C, the one with the
// higher sequence number is current), two region tables at 192 KiB and 256 KiB naming the BAT and metadata regions,
// the metadata (block size, sizes, parent locator), the BAT (64-bit entries: 3 state bits, a file offset in MiB;
// after every `chunk ratio` payload entries one sector-bitmap entry) and the log.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "blockcore/base/status.h"
#include "blockcore/io/io_engine.h"

namespace vdkit::vhdx {

inline constexpr uint64_t kMiB = 1u << 20;
inline constexpr uint64_t kHeaderBytes = 4096;
inline constexpr uint64_t kRegionTableBytes = 64u << 10;
inline constexpr uint64_t kSectorBitmapBlockBytes = kMiB;

// Named limits.
inline constexpr uint64_t kMaxVirtualBytes = 64ull << 40;  // the specification's maximum
inline constexpr uint64_t kMaxBatBytes = 256u << 20;
inline constexpr uint64_t kMaxMetadataBytes = 64u << 20;
inline constexpr uint32_t kMaxTableEntries = 2047;  // region and metadata tables
inline constexpr uint32_t kMaxParentLocatorBytes = 64u << 10;

enum PayloadState : uint8_t {
  kNotPresent = 0,
  kUndefined = 1,
  kZero = 2,
  kUnmapped = 3,
  kFullyPresent = 6,
  kPartiallyPresent = 7,
};

struct Header {
  uint64_t offset = 0;  // where it was read
  uint64_t sequence = 0;
  uint8_t file_write_guid[16] = {};
  uint8_t data_write_guid[16] = {};
  uint8_t log_guid[16] = {};
  uint16_t log_version = 0;
  uint32_t log_length = 0;
  uint64_t log_offset = 0;
  bool log_active() const;
};

struct Layout {
  Header header;
  std::string creator;
  uint64_t bat_offset = 0, bat_length = 0;
  uint64_t metadata_offset = 0, metadata_length = 0;
  uint32_t block_bytes = 0;
  bool leave_blocks_allocated = false;
  bool has_parent = false;
  uint64_t virtual_size = 0;
  uint32_t logical_sector = 0;
  uint32_t physical_sector = 0;
  std::string disk_id;
  std::vector<std::pair<std::string, std::string>> parent_locator;  // key -> value (UTF-8)
  uint64_t chunk_ratio = 0;     // payload blocks per sector-bitmap block
  uint64_t payload_blocks = 0;
  uint64_t bat_entries = 0;
};

// Reads and checks the file identifier, the current header, the region table and the metadata; derives the BAT's
// shape. `read` reads the file's bytes, refusing ranges past its end.
using ReadAt = std::function<Status(uint64_t offset, void* buf, size_t len)>;
Result<Layout> read_layout(const ReadAt& read, uint64_t file_size, const std::string& where);

// Reads the current header only (to see whether its log needs replaying before anything else is read).
Result<Header> read_current_header(const ReadAt& read, const std::string& where);

// The BAT index of payload block b, and of the sector-bitmap entry of the chunk holding it.
inline uint64_t payload_index(const Layout& l, uint64_t b) { return b + b / l.chunk_ratio; }
inline uint64_t bitmap_index(const Layout& l, uint64_t b) { return (b / l.chunk_ratio) * (l.chunk_ratio + 1) + l.chunk_ratio; }

}  // namespace vdkit::vhdx
