// The XFS on-disk format as the reader needs it: magic numbers, field offsets, the superblock, block addresses, the
// v5 checksum, and the limits every walk runs under. Field names follow xfsprogs' xfs_format.h; every multi-byte
// field is big-endian except the CRCs (little-endian).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "blockcore/base/status.h"

namespace vdkit::guestfs::xfs {

// ---------------------------------------------------------------- limits (a hostile image ends in an error)

// Extents one fork may map (a directory or file with more is refused rather than held in memory).
inline constexpr uint64_t kMaxForkExtents = 1u << 21;
// Levels of a bmbt or an AG btree (XFS itself stays below 10 for any possible file system).
inline constexpr int kMaxBtreeLevels = 12;
// Entries one directory may hold.
inline constexpr uint64_t kMaxDirEntries = 1u << 22;
// Bytes of a symbolic link's target (XFS_SYMLINK_MAXLEN).
inline constexpr uint32_t kMaxSymlinkLen = 1024;
// Free-space records of the whole file system the map of unused blocks takes.
inline constexpr uint64_t kMaxFreeRecords = 1u << 24;
// Inodes whose extent maps the reader keeps (FUSE reads a file in many small requests).
inline constexpr size_t kExtentCacheInodes = 64;

// ---------------------------------------------------------------- magic numbers

inline constexpr uint32_t kSbMagic = 0x58465342;          // "XFSB"
inline constexpr uint32_t kAgfMagic = 0x58414746;         // "XAGF"
inline constexpr uint16_t kInodeMagic = 0x494e;           // "IN"
inline constexpr uint32_t kBmapMagic = 0x424d4150;        // "BMAP"
inline constexpr uint32_t kBmap3Magic = 0x424d4133;       // "BMA3"
inline constexpr uint32_t kAbtbMagic = 0x41425442;        // "ABTB" (bnobt)
inline constexpr uint32_t kAbtb3Magic = 0x41423342;       // "AB3B"
inline constexpr uint32_t kDir2BlockMagic = 0x58443242;   // "XD2B"
inline constexpr uint32_t kDir3BlockMagic = 0x58444233;   // "XDB3"
inline constexpr uint32_t kDir2DataMagic = 0x58443244;    // "XD2D"
inline constexpr uint32_t kDir3DataMagic = 0x58444433;    // "XDD3"
inline constexpr uint32_t kDir2FreeMagic = 0x58443246;    // "XD2F"
inline constexpr uint32_t kDir3FreeMagic = 0x58444633;    // "XDF3"
inline constexpr uint16_t kDir2Leaf1Magic = 0xd2f1, kDir3Leaf1Magic = 0x3df1;
inline constexpr uint16_t kDir2LeafNMagic = 0xd2ff, kDir3LeafNMagic = 0x3dff;
inline constexpr uint16_t kDaNodeMagic = 0xfebe, kDa3NodeMagic = 0x3ebe;
inline constexpr uint16_t kAttrLeafMagic = 0xfbee, kAttr3LeafMagic = 0x3bee;
inline constexpr uint32_t kSymlinkMagic = 0x58534c4d;     // "XSLM"
inline constexpr uint32_t kAttr3RemoteMagic = 0x5841524d; // "XARM"
inline constexpr uint32_t kLogHeaderMagic = 0xfeedbabe;

// ---------------------------------------------------------------- feature bits

inline constexpr uint16_t kVersionNumMask = 0x000f;
inline constexpr uint16_t kVersionDirV2Bit = 0x2000;
inline constexpr uint16_t kVersionMoreBitsBit = 0x8000;
inline constexpr uint32_t kFeatures2Ftype = 0x200;
inline constexpr uint32_t kIncompatFtype = 0x1, kIncompatSpinodes = 0x2, kIncompatMetaUuid = 0x4,
                          kIncompatBigtime = 0x8, kIncompatNeedsRepair = 0x10, kIncompatNrext64 = 0x20,
                          kIncompatExchrange = 0x40, kIncompatParent = 0x80;
// Incompatible features the reader understands (metadir, zoned and anything newer are refused).
inline constexpr uint32_t kIncompatKnown = kIncompatFtype | kIncompatSpinodes | kIncompatMetaUuid | kIncompatBigtime |
                                           kIncompatNeedsRepair | kIncompatNrext64 | kIncompatExchrange |
                                           kIncompatParent;

// Inode formats (di_format / di_aformat).
enum class ForkFormat : uint8_t { kDev = 0, kLocal = 1, kExtents = 2, kBtree = 3 };
inline constexpr uint16_t kDiflagRealtime = 0x1;
inline constexpr uint64_t kDiflag2Bigtime = 1u << 3, kDiflag2Nrext64 = 1u << 4;

// Directory entry file types (XFS_DIR3_FT_*).
inline constexpr uint8_t kFtUnknown = 0, kFtReg = 1, kFtDir = 2, kFtChr = 3, kFtBlk = 4, kFtFifo = 5, kFtSock = 6,
                         kFtSymlink = 7;

// ---------------------------------------------------------------- layout constants

inline constexpr size_t kInodeCoreV2 = 100;  // v1/v2 inode core; the literal area follows
inline constexpr size_t kInodeCoreV3 = 176;
inline constexpr size_t kInodeCrcOffset = 100;
inline constexpr size_t kLongBtreeHeaderV4 = 24, kLongBtreeHeaderV5 = 72, kLongBtreeCrcOffset = 64;
inline constexpr size_t kShortBtreeHeaderV4 = 16, kShortBtreeHeaderV5 = 56, kShortBtreeCrcOffset = 52;
inline constexpr size_t kDirDataHeaderV4 = 16, kDirDataHeaderV5 = 64;
inline constexpr size_t kDaHeaderV4 = 16, kDaHeaderV5 = 64;  // da node / dir leaf / attr leaf headers
inline constexpr size_t kDa3CrcOffset = 12;
inline constexpr size_t kAgfCrcOffset = 216;
inline constexpr size_t kSbCrcOffset = 224;
inline constexpr size_t kSymlinkHeaderV5 = 56;
inline constexpr size_t kAttr3RemoteHeader = 56;
// Directory address space: data blocks below 32 GiB, leaf blocks from there, free-index blocks from 64 GiB.
inline constexpr uint64_t kDirLeafOffset = 32ull << 30;

// ---------------------------------------------------------------- the superblock

struct Superblock {
  uint32_t block_size = 0;
  uint64_t dblocks = 0;
  uint64_t logstart = 0;  // fs block of the internal log; 0 for an external one
  uint32_t logblocks = 0;
  uint64_t rootino = 0;
  uint32_t agblocks = 0, agcount = 0;
  uint16_t versionnum = 0, sectsize = 0, inodesize = 0, inopblock = 0;
  uint8_t blocklog = 0, sectlog = 0, inodelog = 0, inopblog = 0, agblklog = 0, dirblklog = 0;
  uint64_t icount = 0, ifree = 0, fdblocks = 0;  // counters (lazily kept on v5: approximate)
  uint32_t features2 = 0;
  uint32_t compat = 0, ro_compat = 0, incompat = 0, log_incompat = 0;
  uint8_t uuid[16] = {}, meta_uuid[16] = {};
  std::string label;

  int version() const { return versionnum & kVersionNumMask; }
  bool crc() const { return version() == 5; }
  bool has_ftype() const { return crc() ? (incompat & kIncompatFtype) != 0 : (features2 & kFeatures2Ftype) != 0; }
  uint32_t dir_block_size() const { return block_size << dirblklog; }
  // The UUID v5 metadata carries (sb_meta_uuid when the user changed sb_uuid).
  const uint8_t* metadata_uuid() const { return (incompat & kIncompatMetaUuid) ? meta_uuid : uuid; }
};

// Decodes and checks the primary superblock (the first sector; sectsize bytes for its CRC).
Result<Superblock> parse_superblock(std::span<const uint8_t> sector);

// ---------------------------------------------------------------- checksums

// XFS's CRC32c of a buffer whose little-endian crc field at crc_offset counts as zero.
uint32_t xfs_crc(std::span<const uint8_t> buf, size_t crc_offset);
inline bool crc_ok(std::span<const uint8_t> buf, size_t crc_offset) {
  return crc_offset + 4 <= buf.size() &&
         xfs_crc(buf, crc_offset) == (static_cast<uint32_t>(buf[crc_offset]) | buf[crc_offset + 1] << 8 |
                                      buf[crc_offset + 2] << 16 | static_cast<uint32_t>(buf[crc_offset + 3]) << 24);
}

// ---------------------------------------------------------------- extents

// One bmbt record: file blocks [startoff, startoff + blockcount) at fs block startblock.
struct Extent {
  uint64_t startoff = 0;
  uint64_t startblock = 0;  // agno << agblklog | agbno
  uint64_t blockcount = 0;
  bool unwritten = false;
};

// Unpacks the 128-bit big-endian record (flag:1, startoff:54, startblock:52, blockcount:21).
inline Extent decode_extent(const uint8_t* p) {
  uint64_t l0 = static_cast<uint64_t>(p[0]) << 56 | static_cast<uint64_t>(p[1]) << 48 |
                static_cast<uint64_t>(p[2]) << 40 | static_cast<uint64_t>(p[3]) << 32 |
                static_cast<uint64_t>(p[4]) << 24 | static_cast<uint64_t>(p[5]) << 16 |
                static_cast<uint64_t>(p[6]) << 8 | p[7];
  uint64_t l1 = static_cast<uint64_t>(p[8]) << 56 | static_cast<uint64_t>(p[9]) << 48 |
                static_cast<uint64_t>(p[10]) << 40 | static_cast<uint64_t>(p[11]) << 32 |
                static_cast<uint64_t>(p[12]) << 24 | static_cast<uint64_t>(p[13]) << 16 |
                static_cast<uint64_t>(p[14]) << 8 | p[15];
  Extent e;
  e.unwritten = (l0 >> 63) != 0;
  e.startoff = (l0 & ((1ull << 63) - 1)) >> 9;
  e.startblock = ((l0 & 0x1ff) << 43) | (l1 >> 21);
  e.blockcount = l1 & ((1ull << 21) - 1);
  return e;
}

}  // namespace vdkit::guestfs::xfs
