// Btrfs on-disk constants and item layouts (from the btrfs on-disk format documentation and btrfs-progs'
// kernel-shared/ctree.h names), and the key every tree is sorted by.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "blockcore/base/bytes.h"

namespace vdkit::guestfs::btrfs {

// ---------------------------------------------------------------- superblock
constexpr uint64_t kSuperOffset = 64 * 1024;
constexpr uint64_t kSuperMirrors[] = {64ull << 10, 64ull << 20, 256ull << 30};
constexpr uint32_t kSuperSize = 4096;
constexpr char kMagic[8] = {'_', 'B', 'H', 'R', 'f', 'S', '_', 'M'};
constexpr uint32_t kCsumSize = 32;  // room for the checksum in every header
constexpr uint32_t kSysChunkArrayMax = 2048;
// Btrfs never allocates the first MiB of a device (boot loaders live there).
constexpr uint64_t kDeviceReserved = 1ull << 20;

namespace sb {  // superblock field offsets
constexpr size_t kCsum = 0x00, kFsid = 0x20, kBytenr = 0x30, kFlags = 0x38, kMagic = 0x40, kGeneration = 0x48,
                 kRoot = 0x50, kChunkRoot = 0x58, kLogRoot = 0x60, kTotalBytes = 0x70, kBytesUsed = 0x78,
                 kNumDevices = 0x88, kSectorSize = 0x90, kNodeSize = 0x94, kSysChunkArraySize = 0xa0,
                 kChunkRootGeneration = 0xa4, kCompatRo = 0xb4, kIncompat = 0xbc, kCsumType = 0xc4,
                 kRootLevel = 0xc6, kChunkRootLevel = 0xc7, kLogRootLevel = 0xc8, kDevItem = 0xc9, kLabel = 0x12b,
                 kMetadataUuid = 0x23b, kSysChunkArray = 0x32b;
}  // namespace sb

// dev_item inside the superblock
namespace dev {
constexpr size_t kDevid = 0, kTotalBytes = 8, kUuid = 66, kFsid = 82;
}

enum CsumType : uint16_t { kCsumCrc32c = 0, kCsumXxhash64 = 1, kCsumSha256 = 2, kCsumBlake2b = 3 };

// Feature bits.
constexpr uint64_t kIncompatMixedBackref = 1 << 0, kIncompatDefaultSubvol = 1 << 1, kIncompatMixedGroups = 1 << 2,
                   kIncompatCompressLzo = 1 << 3, kIncompatCompressZstd = 1 << 4, kIncompatBigMetadata = 1 << 5,
                   kIncompatExtendedIref = 1 << 6, kIncompatRaid56 = 1 << 7, kIncompatSkinnyMetadata = 1 << 8,
                   kIncompatNoHoles = 1 << 9, kIncompatMetadataUuid = 1 << 10, kIncompatRaid1c34 = 1 << 11,
                   kIncompatZoned = 1 << 12, kIncompatExtentTreeV2 = 1 << 13, kIncompatRaidStripeTree = 1 << 14,
                   kIncompatSimpleQuota = 1 << 16;
// What this reader understands; any other incompat bit is refused by name.
constexpr uint64_t kIncompatKnown = kIncompatMixedBackref | kIncompatDefaultSubvol | kIncompatMixedGroups |
                                    kIncompatCompressLzo | kIncompatCompressZstd | kIncompatBigMetadata |
                                    kIncompatExtendedIref | kIncompatRaid56 | kIncompatSkinnyMetadata |
                                    kIncompatNoHoles | kIncompatMetadataUuid | kIncompatRaid1c34 | kIncompatZoned |
                                    kIncompatSimpleQuota;
constexpr uint64_t kCompatRoFreeSpaceTree = 1 << 0, kCompatRoBlockGroupTree = 1 << 3;

// ---------------------------------------------------------------- tree blocks
namespace hdr {
constexpr size_t kCsum = 0x00, kFsid = 0x20, kBytenr = 0x30, kFlags = 0x38, kChunkTreeUuid = 0x40,
                 kGeneration = 0x50, kOwner = 0x58, kNritems = 0x60, kLevel = 0x64, kSize = 0x65;
}
constexpr size_t kKeySize = 17;
constexpr size_t kItemSize = kKeySize + 8;     // key, data offset u32, data size u32
constexpr size_t kKeyPtrSize = kKeySize + 16;  // key, block pointer u64, generation u64
constexpr int kMaxLevel = 8;                   // BTRFS_MAX_LEVEL: levels 0..7

// Tree and object ids.
constexpr uint64_t kRootTreeObjectid = 1, kExtentTreeObjectid = 2, kChunkTreeObjectid = 3, kDevTreeObjectid = 4,
                   kFsTreeObjectid = 5, kRootTreeDirObjectid = 6, kCsumTreeObjectid = 7,
                   kBlockGroupTreeObjectid = 11, kFirstFreeObjectid = 256, kLastFreeObjectid = ~uint64_t{0} - 255,
                   kFirstChunkTreeObjectid = 256, kTreeLogObjectid = ~uint64_t{0} - 5,
                   kEmptySubvolDirObjectid = 2;

inline bool is_fs_tree(uint64_t id) { return id == kFsTreeObjectid || (id >= kFirstFreeObjectid && id <= kLastFreeObjectid); }

// Item types.
enum ItemType : uint8_t {
  kInodeItem = 1,
  kInodeRef = 12,
  kInodeExtref = 13,
  kXattrItem = 24,
  kDirItem = 84,
  kDirIndex = 96,
  kExtentData = 108,
  kRootItem = 132,
  kRootBackref = 144,
  kRootRef = 156,
  kExtentItem = 168,
  kMetadataItem = 169,
  kBlockGroupItem = 192,
  kDevExtent = 204,
  kDevItem = 216,
  kChunkItem = 228,
};

// ---------------------------------------------------------------- items
namespace chunk {  // btrfs_chunk
constexpr size_t kLength = 0, kOwner = 8, kStripeLen = 16, kType = 24, kSectorSize = 40, kNumStripes = 44,
                 kSubStripes = 46, kStripes = 48, kStripeSize = 32;  // stripe: devid u64, offset u64, uuid[16]
}
// Block group profile and type bits (chunk type, block group flags).
constexpr uint64_t kBgData = 1, kBgSystem = 2, kBgMetadata = 4, kBgRaid0 = 8, kBgRaid1 = 16, kBgDup = 32,
                   kBgRaid10 = 64, kBgRaid5 = 128, kBgRaid6 = 256, kBgRaid1c3 = 512, kBgRaid1c4 = 1024;
constexpr uint64_t kBgProfileMask = kBgRaid0 | kBgRaid1 | kBgDup | kBgRaid10 | kBgRaid5 | kBgRaid6 | kBgRaid1c3 |
                                    kBgRaid1c4;
std::string profile_name(uint64_t type);

namespace inode {  // btrfs_inode_item, 160 bytes
constexpr size_t kGeneration = 0, kSize = 16, kNbytes = 24, kNlink = 40, kUid = 44, kGid = 48, kMode = 52,
                 kRdev = 56, kFlags = 64, kAtime = 112, kCtime = 124, kMtime = 136, kItemBytes = 160;
}
namespace root {  // btrfs_root_item
constexpr size_t kInode = 0, kGeneration = 160, kRootDirid = 168, kBytenr = 176, kFlags = 208, kRefs = 216,
                 kLevel = 238, kGenerationV2 = 239, kUuid = 247, kParentUuid = 263, kOtime = 339,
                 kLegacyBytes = 239, kItemBytes = 439;
constexpr uint64_t kFlagRdonly = 1;
}
namespace dir {  // btrfs_dir_item, followed by name then data
constexpr size_t kLocation = 0, kTransid = 17, kDataLen = 25, kNameLen = 27, kType = 29, kHeaderBytes = 30;
}
enum DirType : uint8_t { kFtUnknown = 0, kFtRegFile, kFtDir, kFtChrdev, kFtBlkdev, kFtFifo, kFtSock, kFtSymlink, kFtXattr };
namespace rootref {  // btrfs_root_ref: dirid u64, sequence u64, name_len u16, name
constexpr size_t kDirid = 0, kSequence = 8, kNameLen = 16, kHeaderBytes = 18;
}
namespace iref {  // btrfs_inode_ref: index u64, name_len u16, name
constexpr size_t kIndex = 0, kNameLen = 8, kHeaderBytes = 10;
}
namespace fextent {  // btrfs_file_extent_item
constexpr size_t kGeneration = 0, kRamBytes = 8, kCompression = 16, kEncryption = 17, kOtherEncoding = 18, kType = 20,
                 kInlineData = 21, kDiskBytenr = 21, kDiskNumBytes = 29, kOffset = 37, kNumBytes = 45,
                 kRegularBytes = 53;
}
enum FileExtentType : uint8_t { kExtentInline = 0, kExtentRegular = 1, kExtentPrealloc = 2 };
enum Compression : uint8_t { kCompressNone = 0, kCompressZlib = 1, kCompressLzo = 2, kCompressZstd = 3 };
namespace bgitem {  // btrfs_block_group_item: used u64, chunk_objectid u64, flags u64
constexpr size_t kUsed = 0, kFlags = 16, kItemBytes = 24;
}

// ---------------------------------------------------------------- keys
struct Key {
  uint64_t objectid = 0;
  uint8_t type = 0;
  uint64_t offset = 0;
  auto operator<=>(const Key&) const = default;
  static Key load(const uint8_t* p) { return {load_le64(p), p[8], load_le64(p + 9)}; }
  static constexpr Key max() { return {~uint64_t{0}, 0xff, ~uint64_t{0}}; }
  std::string str() const {
    return "(" + std::to_string(objectid) + " " + std::to_string(type) + " " + std::to_string(offset) + ")";
  }
};

}  // namespace vdkit::guestfs::btrfs
