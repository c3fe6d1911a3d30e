// VMDK on-disk structures, named limits and free-standing parsers (sparse header, stream markers, seSparse,
// descriptor).
//
// Everything here parses from a byte span and touches no file, so the VMDK
// driver and the streaming converter (reading a streamOptimized VMDK front to
// back from a pipe) share one set of checks. Multi-byte fields are little endian.
// References: VMware "Virtual Disk Format 5.0" and libvmdk's documentation/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::vmdk {

inline constexpr uint64_t kSectorSize = 512;

// ---- Named limits (QEMU's block/vmdk.c is the guide) -------------------------------------------
// A text descriptor, embedded or in its own file.
inline constexpr uint64_t kMaxDescriptorBytes = 1u << 20;
// Grain table entries per grain table (numGTEsPerGT); VMware writes 512.
inline constexpr uint32_t kMaxGtesPerGt = 512;
// Grain size in sectors: a power of two, at most 128 MiB per grain.
inline constexpr uint64_t kMaxGrainSectors = (128u << 20) / kSectorSize;
// Bytes of grain directory kept in memory for one extent.
inline constexpr uint64_t kMaxGrainDirectoryBytes = 32u << 20;
// Largest virtual disk (and largest extent) vdkit accepts: 2^50 bytes (1 PiB),
// far above VMware's 62 TiB and small enough that sector arithmetic never overflows.
inline constexpr uint64_t kMaxCapacityBytes = 1ull << 50;
inline constexpr uint64_t kMaxCapacitySectors = kMaxCapacityBytes / kSectorSize;
// Extent lines in one descriptor.
inline constexpr size_t kMaxExtents = 65536;
// A compressed grain's stored size may exceed the grain a little (incompressible
// data plus zlib framing); QEMU allows twice the grain size, so do we.
inline uint64_t max_compressed_grain_bytes(uint64_t grain_bytes) { return 2 * grain_bytes; }
// Hosted sparse versions understood (1: original, 2: zeroed-grain GTEs, 3: streamOptimized with markers).
inline constexpr uint32_t kMaxSparseVersion = 3;

// ---- Hosted sparse extent header ("KDMV", 512 bytes at offset 0; a copy sits in the stream footer) ---
inline constexpr uint32_t kSparseMagic = 0x564d444b;         // "KDMV" read as little-endian uint32
inline constexpr uint64_t kGdAtEnd = 0xffffffffffffffffull;  // gdOffset: look in the footer
inline constexpr uint32_t kFlagValidNewlineTest = 1u << 0;
inline constexpr uint32_t kFlagRedundantGrainTable = 1u << 1;
inline constexpr uint32_t kFlagZeroedGrainGte = 1u << 2;  // GTE == 1 means "reads as zeros"
inline constexpr uint32_t kFlagCompressedGrains = 1u << 16;
inline constexpr uint32_t kFlagMarkers = 1u << 17;
inline constexpr uint16_t kCompressionNone = 0;
inline constexpr uint16_t kCompressionDeflate = 1;
inline constexpr uint32_t kGteZeroed = 1;  // with kFlagZeroedGrainGte

struct SparseHeader {
  uint32_t version = 0;
  uint32_t flags = 0;
  uint64_t capacity = 0;           // sectors
  uint64_t grain_size = 0;         // sectors
  uint64_t descriptor_offset = 0;  // sectors; 0 when there is no embedded descriptor
  uint64_t descriptor_size = 0;    // sectors
  uint32_t num_gtes_per_gt = 0;
  uint64_t rgd_offset = 0;  // sectors (redundant grain directory)
  uint64_t gd_offset = 0;   // sectors, or kGdAtEnd
  uint64_t overhead = 0;    // sectors of metadata before the first grain
  bool unclean_shutdown = false;
  uint8_t newline_chars[4] = {};  // '\n', ' ', '\r', '\n' unless mangled by a text-mode transfer
  uint16_t compress_algorithm = 0;

  bool compressed() const { return flags & kFlagCompressedGrains; }
  bool has_markers() const { return flags & kFlagMarkers; }
  bool zeroed_grain_gte() const { return flags & kFlagZeroedGrainGte; }
  uint64_t grain_bytes() const { return grain_size * kSectorSize; }
  // Grain directory entries needed to cover capacity (valid after validate_sparse_header()).
  uint64_t gd_entries() const;
};
inline constexpr size_t kSparseHeaderBytes = 512;

// Decodes the 512-byte header without judging it. EINVAL if bytes is short or the magic is wrong.
// `where` names the file for messages; `at` is the header's file offset (0, or the footer's).
Result<SparseHeader> parse_sparse_header(std::span<const uint8_t> bytes, const std::string& where, uint64_t at = 0);
// Checks every field against the limits above (version, grain size, GTEs per GT,
// capacity, grain directory size, compression algorithm, newline test) with
// overflow-checked arithmetic; gd_offset == kGdAtEnd is accepted here (the caller
// reads the footer). Messages name the field and offset.
Status validate_sparse_header(const SparseHeader& h, const std::string& where, uint64_t at = 0);

// ---- streamOptimized markers (each starts on a sector boundary) -------------------------------------
// A grain marker is {uint64 lba (sectors); uint32 size (compressed bytes, > 0); data...}.
// A metadata marker is {uint64 sectors of metadata following; uint32 size = 0; uint32 type; pad to 512}.
enum class MarkerType : uint32_t { kEndOfStream = 0, kGrainTable = 1, kGrainDirectory = 2, kFooter = 3 };
inline constexpr size_t kGrainMarkerBytes = 12;  // lba + size, then the compressed data
inline constexpr size_t kMetadataMarkerBytes = 512;

struct Marker {
  uint64_t value = 0;  // grain: LBA in sectors; metadata: sectors that follow the marker
  uint32_t size = 0;   // grain: compressed bytes; 0 for metadata markers
  uint32_t type = 0;   // metadata markers only (MarkerType)
  bool is_grain() const { return size != 0; }
};
// Parses a marker from at least 16 bytes (12 suffice for a grain marker).
Result<Marker> parse_marker(std::span<const uint8_t> bytes, const std::string& where, uint64_t at);

// The tail of a streamOptimized file: footer marker, footer header, end-of-stream marker.
inline constexpr size_t kStreamTailBytes = 3 * 512;
// Parses the last kStreamTailBytes of a file whose size is file_size; returns the footer header
// (validated, with a real gd_offset). EINVAL naming the missing piece when the footer is absent.
Result<SparseHeader> parse_stream_footer(std::span<const uint8_t> tail, uint64_t file_size, const std::string& where);

// ---- seSparse (ESXi 6.5+ "space efficient" sparse extent) -------------------------------------------
inline constexpr uint64_t kSeSparseMagic = 0x00000000cafebabeull;
inline constexpr uint64_t kSeSparseVersion = 0x0000000200000001ull;
inline constexpr uint64_t kSeSparseVolatileMagic = 0x00000000cafecafeull;
inline constexpr uint64_t kSeSparseGrainSectors = 8;        // 4 KiB grains, the only size ESXi writes
inline constexpr uint64_t kSeSparseGrainTableSectors = 64;  // 4096 64-bit entries per grain table
// Grain directory entry: top 32 bits 0x10000000 = allocated, low 32 bits = grain table number.
inline constexpr uint64_t kSeGdeTypeMask = 0xffffffff00000000ull;
inline constexpr uint64_t kSeGdeAllocated = 0x1000000000000000ull;
// Grain table entry: top nibble is the type.
inline constexpr uint64_t kSeGteTypeMask = 0xf000000000000000ull;
inline constexpr uint64_t kSeGteUnallocated = 0x0000000000000000ull;
inline constexpr uint64_t kSeGteUnmapped = 0x1000000000000000ull;  // SCSI UNMAP: reads as zeros
inline constexpr uint64_t kSeGteZero = 0x2000000000000000ull;
inline constexpr uint64_t kSeGteAllocated = 0x3000000000000000ull;
// Allocated: grain number = bits 48..59 as the low 12 bits, bits 0..47 as the high bits.
inline uint64_t se_gte_grain_number(uint64_t gte) {
  return ((gte & 0x0fff000000000000ull) >> 48) | ((gte & 0x0000ffffffffffffull) << 12);
}

struct SeSparseHeader {
  uint64_t capacity = 0;          // sectors
  uint64_t grain_size = 0;        // sectors
  uint64_t grain_table_size = 0;  // sectors
  uint64_t flags = 0;
  uint64_t volatile_header_offset = 0, volatile_header_size = 0;
  uint64_t journal_header_offset = 0, journal_header_size = 0;
  uint64_t journal_offset = 0, journal_size = 0;
  uint64_t grain_dir_offset = 0, grain_dir_size = 0;        // sectors
  uint64_t grain_tables_offset = 0, grain_tables_size = 0;  // sectors
  uint64_t free_bitmap_offset = 0, free_bitmap_size = 0;
  uint64_t backmap_offset = 0, backmap_size = 0;
  uint64_t grains_offset = 0, grains_size = 0;  // sectors
  uint64_t gd_entries() const { return grain_dir_size * kSectorSize / 8; }
  uint64_t gt_entries() const { return grain_table_size * kSectorSize / 8; }
};
inline constexpr size_t kSeSparseHeaderBytes = 512;
// Parses and validates the constant header at offset 0 (magic, version, grain and
// table sizes ESXi writes, reserved fields, region offsets inside 2^50 bytes).
Result<SeSparseHeader> parse_sesparse_header(std::span<const uint8_t> bytes, const std::string& where);
// Checks the volatile header (magic, and no journal left to replay: vdkit never replays it).
Status check_sesparse_volatile_header(std::span<const uint8_t> bytes, const std::string& where, uint64_t at);

// ---- The text descriptor ------------------------------------------------------------------------------
enum class ExtentKind { kSparse, kFlat, kZero, kVmfs, kVmfsRaw, kVmfsRdm, kVmfsSparse, kSeSparse };
enum class ExtentAccess { kReadWrite, kReadOnly, kNoAccess };

struct DescriptorExtent {
  ExtentAccess access = ExtentAccess::kReadWrite;
  uint64_t sectors = 0;
  ExtentKind kind = ExtentKind::kFlat;
  std::string kind_name;  // as written ("SPARSE", "VMFS", ...)
  std::string filename;   // unquoted; empty for ZERO
  uint64_t offset = 0;    // sectors into the file (flat kinds only)
  size_t line = 0;        // 1-based line number, for messages
};

struct Descriptor {
  std::string version;  // "1" (or 2, 3)
  std::string encoding;
  uint32_t cid = 0xffffffff;
  uint32_t parent_cid = 0xffffffff;  // 0xffffffff: no parent
  bool has_parent_cid = false;
  std::string create_type;
  std::string parent_file_name_hint;  // empty: no parent
  std::vector<DescriptorExtent> extents;
  // "ddb.*" entries and any other key = value pairs, in order, values unquoted.
  std::vector<std::pair<std::string, std::string>> entries;

  bool has_parent() const { return !parent_file_name_hint.empty() || (has_parent_cid && parent_cid != 0xffffffff); }
  // The value of a key (compared case-insensitively), or empty.
  std::string get(std::string_view key) const;
  // Sum of extent sectors (the parser guarantees it stays within kMaxCapacitySectors).
  uint64_t total_sectors() const;
};

// Parses descriptor text (at most kMaxDescriptorBytes; text stops at the first NUL
// as in an embedded descriptor area). Accepts LF and CRLF line ends, '#' comments,
// blank lines, spaces/tabs around '=', quoted or bare values, keys in any case, and
// extent lines "ACCESS SECTORS TYPE ["file" [OFFSET]]" with TYPE in any case.
// Errors name the line. Does not open any file.
Result<Descriptor> parse_descriptor(std::string_view text, const std::string& where);

const char* to_string(ExtentKind k);

}  // namespace vdkit::vmdk
