// The qcow2 on-disk format (docs/interop/qcow2.txt): header fields, flags, entry masks and the named limits.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "blockcore/base/bytes.h"
#include "blockcore/io/io_engine.h"
#include "blockcore/base/status.h"

namespace vdkit::qcow2 {

// ---- Named limits (QEMU's, where QEMU has one) ----
inline constexpr uint32_t kMagic = 0x514649fb;   // "QFI\xfb"
inline constexpr uint32_t kMinClusterBits = 9;   // 512 B
inline constexpr uint32_t kMaxClusterBits = 21;  // 2 MiB
inline constexpr uint64_t kMaxL1Bytes = 32ull << 20;
inline constexpr uint64_t kMaxRefcountTableBytes = 8ull << 20;
inline constexpr uint32_t kMaxBackingNameBytes = 1023;
inline constexpr uint32_t kMaxBackingFormatBytes = 15;  // QEMU keeps it in char[16]
inline constexpr uint32_t kMaxDataFileNameBytes = 4095;
inline constexpr uint32_t kMaxHeaderExtensions = 1024;
inline constexpr uint32_t kMaxSnapshots = 65536;
inline constexpr uint32_t kMaxRefcountOrder = 6;  // 64-bit refcounts
inline constexpr uint32_t kV2HeaderLength = 72;
inline constexpr uint32_t kV3MinHeaderLength = 104;
// Inflated L2 tables kept in memory; enough for 256 GiB of 64 KiB clusters.
inline constexpr uint64_t kMaxL2CacheBytes = 32ull << 20;
// The most one prefetch() call reads ahead.
inline constexpr uint64_t kMaxPrefetchBytes = 32ull << 20;
// Subclusters per cluster with extended L2 entries.
inline constexpr uint32_t kSubclustersPerCluster = 32;

// ---- Feature bits ----
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatDataFile = 1ull << 2;
inline constexpr uint64_t kIncompatCompression = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kIncompatKnown = 0x1f;
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;
inline constexpr uint64_t kAutoclearBitmaps = 1ull << 0;
inline constexpr uint64_t kAutoclearDataFileRaw = 1ull << 1;

inline constexpr uint8_t kCompressionZlib = 0;
inline constexpr uint8_t kCompressionZstd = 1;

// ---- Header extension types ----
inline constexpr uint32_t kExtEnd = 0;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureNames = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtEncryption = 0x0537be77;
inline constexpr uint32_t kExtDataFile = 0x44415441;

// ---- Table entries ----
inline constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
inline constexpr uint64_t kOflagCopied = 1ull << 63;
inline constexpr uint64_t kOflagCompressed = 1ull << 62;
inline constexpr uint64_t kOflagZero = 1ull << 0;
inline constexpr uint64_t kRefTableOffsetMask = 0xfffffffffffffe00ull;

// ---- Header field offsets (for messages, writers and tests) ----
inline constexpr uint64_t kOffVersion = 4;
inline constexpr uint64_t kOffBackingFileOffset = 8;
inline constexpr uint64_t kOffBackingFileSize = 16;
inline constexpr uint64_t kOffClusterBits = 20;
inline constexpr uint64_t kOffSize = 24;
inline constexpr uint64_t kOffCryptMethod = 32;
inline constexpr uint64_t kOffL1Size = 36;
inline constexpr uint64_t kOffL1TableOffset = 40;
inline constexpr uint64_t kOffRefcountTableOffset = 48;
inline constexpr uint64_t kOffRefcountTableClusters = 56;
inline constexpr uint64_t kOffNbSnapshots = 60;
inline constexpr uint64_t kOffSnapshotsOffset = 64;
inline constexpr uint64_t kOffIncompatible = 72;
inline constexpr uint64_t kOffCompatible = 80;
inline constexpr uint64_t kOffAutoclear = 88;
inline constexpr uint64_t kOffRefcountOrder = 96;
inline constexpr uint64_t kOffHeaderLength = 100;
inline constexpr uint64_t kOffCompressionType = 104;

struct FeatureName {
  uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
  uint8_t bit = 0;
  std::string name;
};

// The header and what its extensions say, checked against the limits above.
struct Header {
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible = 0;
  uint64_t compatible = 0;
  uint64_t autoclear = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = kV2HeaderLength;
  uint8_t compression_type = kCompressionZlib;

  std::string backing_file;    // empty: no backing file
  std::string backing_format;  // from the backing-format extension (may be empty)
  std::string data_file;       // from the data-file extension (external data file)
  std::vector<FeatureName> feature_names;

  uint64_t cluster_size() const { return 1ull << cluster_bits; }
  bool extended_l2() const { return incompatible & kIncompatExtendedL2; }
  bool has_data_file() const { return incompatible & kIncompatDataFile; }
  // Bytes per L2 entry and entries per L2 table.
  uint32_t l2_entry_bytes() const { return extended_l2() ? 16 : 8; }
  uint32_t l2_bits() const { return cluster_bits - (extended_l2() ? 4 : 3); }
  // Guest bytes one L1 entry covers, as a shift.
  uint32_t l1_shift() const { return cluster_bits + l2_bits(); }
};

// Reads and validates the header, its extensions and the backing file name.
// Every error names the field and its offset in the file. file_size bounds the tables.
Result<Header> read_header(const File& file, uint64_t file_size);

// The name of an incompatible feature bit, from the image's feature-name table or the spec.
std::string incompatible_feature_name(const Header& h, unsigned bit);

// L1 entries needed to cover a virtual size (0 on overflow of the shift; callers check).
inline uint64_t l1_entries_for(uint64_t size, uint32_t l1_shift) {
  if (l1_shift >= 64) return size ? 1 : 0;
  uint64_t per = 1ull << l1_shift;
  return size / per + (size % per != 0);
}

// Serializes a version-3 header (16-bit refcounts, header length 112) with an
// optional backing name/format extension, for new images: the one encoder
// behind qcow2 overlays and the qcow2 convert target. Returns the bytes of the
// first cluster.
struct NewImageLayout {
  uint32_t cluster_bits = 16;
  uint64_t size = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  std::string backing_file;
  std::string backing_format;
  // Compressed clusters are zstd (incompatible feature bit 3, compression type 1) rather than zlib.
  bool zstd = false;
};
std::vector<uint8_t> encode_v3_header(const NewImageLayout& l);

}  // namespace vdkit::qcow2
