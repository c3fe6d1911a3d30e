// The one file-system prober: what a device holds at its start, named as blkid names it, with its UUID and label.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"

namespace vdkit::guestfs {

// blkid's TYPE values for what the prober knows.
inline constexpr std::string_view kFsExt2 = "ext2", kFsExt3 = "ext3", kFsExt4 = "ext4", kFsExt4Dev = "ext4dev",
                                  kFsJbd = "jbd", kFsXfs = "xfs", kFsBtrfs = "btrfs", kFsSwap = "swap",
                                  kFsLvm2Member = "LVM2_member", kFsLuks = "crypto_LUKS", kFsVfat = "vfat",
                                  kFsNtfs = "ntfs";

struct FsProbe {
  std::string type;   // one of the kFs* names, "" when nothing known starts there
  std::string uuid;   // as blkid prints UUID, "" when there is none (or it is all zeros)
  std::string label;  // as blkid prints LABEL, "" when none; vfat: the boot sector's (blkid's LABEL_FATBOOT),
                      // NTFS: none (it lives in the MFT)
};

// The bytes from the start of a device the prober looks at: up to Btrfs's superblock at 64 KiB, which also covers
// swap headers on pages of up to 64 KiB.
inline constexpr size_t kProbeBytes = 0x10000 + 0x1000;

// Probes [offset, offset + length) of dev (reading at most kProbeBytes). Unknown content is type ""; only a read
// error is an error.
Result<FsProbe> probe_fs(BlockDevice& dev, uint64_t offset, uint64_t length);
inline Result<FsProbe> probe_fs(BlockDevice& dev) { return probe_fs(dev, 0, dev.size()); }
// The same on the first bytes of a device, already read (fewer than kProbeBytes when the device is smaller).
FsProbe probe_fs_bytes(std::span<const uint8_t> head);

// Every type whose signature `head` carries, in the prober's order (probe_fs_bytes names the first). More than one
// means the bytes are ambiguous: a file system made over another without wiping it keeps the other's signature
// wherever it did not write (a stale swap signature inside a Btrfs or FAT reserved area, a whole-disk file system
// behind an old MBR).
std::vector<std::string> probe_fs_all(std::span<const uint8_t> head);

// Where a swap area's header page ends, found by its signature in the last 10 bytes of a page of 4 to 64 KiB (the
// kernel's page sizes), or a hibernation image written over it (blkid's "swsuspend"). The one page loop for the
// prober and for sparsify's map of a swap area.
struct SwapSignature {
  uint64_t page = 0;         // the header page's size (the signature ends there); 0 when there is none
  bool hibernation = false;  // a hibernation image's signature rather than swap's: the area holds data
  bool version0 = false;     // "SWAP-SPACE": the old header, with no UUID or label
};
SwapSignature find_swap_signature(std::span<const uint8_t> head);

// ext2, ext3, ext4 or ext4dev: what libext2fs (Ext2Volume) opens.
bool is_ext(std::string_view type);

}  // namespace vdkit::guestfs
