// The one file-system prober: superblock magics at their named offsets, ext2/3/4 told apart by features as blkid does.
#include "guestfs/probe.h"

#include <ext2fs/ext2_fs.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <vector>

#include "blockcore/base/bytes.h"

namespace vdkit::guestfs {
namespace {

// ext2/3/4: the superblock at byte 1024, fields at their offsets in libext2fs's struct.
constexpr size_t kExtSuper = 1024;
constexpr size_t kExtMagic = kExtSuper + offsetof(struct ext2_super_block, s_magic);
constexpr size_t kExtCompat = kExtSuper + offsetof(struct ext2_super_block, s_feature_compat);
constexpr size_t kExtIncompat = kExtSuper + offsetof(struct ext2_super_block, s_feature_incompat);
constexpr size_t kExtRoCompat = kExtSuper + offsetof(struct ext2_super_block, s_feature_ro_compat);
constexpr size_t kExtUuid = kExtSuper + offsetof(struct ext2_super_block, s_uuid);
constexpr size_t kExtLabel = kExtSuper + offsetof(struct ext2_super_block, s_volume_name);
constexpr size_t kExtFlags = kExtSuper + offsetof(struct ext2_super_block, s_flags);
constexpr size_t kExtEnd = kExtSuper + sizeof(struct ext2_super_block);
// The feature sets blkid takes ext2 and ext3 to understand; anything beyond ext3's makes ext4.
constexpr uint32_t kExtRoCompatBtreeDir = 0x0004;  // never used, still in blkid's set
constexpr uint32_t kExt2IncompatKnown = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT2_FEATURE_INCOMPAT_META_BG;
constexpr uint32_t kExt3IncompatKnown = kExt2IncompatKnown | EXT3_FEATURE_INCOMPAT_RECOVER;
constexpr uint32_t kExtRoCompatKnown =
    EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE | kExtRoCompatBtreeDir;

// XFS: the superblock at byte 0.
constexpr size_t kXfsUuid = 32, kXfsLabel = 108, kXfsLabelLen = 12, kXfsEnd = 512;

// Btrfs: the primary superblock at 64 KiB.
constexpr size_t kBtrfsSuper = 0x10000;
constexpr size_t kBtrfsFsid = kBtrfsSuper + 0x20, kBtrfsMagic = kBtrfsSuper + 0x40;
constexpr size_t kBtrfsLabel = kBtrfsSuper + 0x12b, kBtrfsLabelLen = 256;

// Swap: the signature ends the first page, whose size is the kernel's (4 to 64 KiB); UUID and label sit in the header
// after the 1 KiB boot block.
constexpr uint64_t kMinSwapPage = 4096, kMaxSwapPage = 65536;
constexpr size_t kSwapSigLen = 10;
constexpr size_t kSwapUuid = 1024 + 12, kSwapLabel = 1024 + 28, kSwapLabelLen = 16;

// LUKS: a big-endian header at byte 0; the UUID is text; LUKS2 adds a label.
constexpr size_t kLuksVersion = 6, kLuks2Label = 24, kLuks2LabelLen = 48, kLuksUuid = 168, kLuksUuidLen = 40;

// LVM2: a label in one of the first four 512-byte sectors; the PV header it points at starts with the PV UUID.
constexpr size_t kLvmSector = 512, kLvmLabelSectors = 4, kLvmSectorXl = 8, kLvmOffsetXl = 20, kLvmType = 24;
constexpr size_t kLvmUuidLen = 32;

// FAT: the boot sector's extended BIOS parameter block, at 36 (FAT12/16) or 64 (FAT32); type name 18 bytes on.
constexpr size_t kFat16Ebpb = 36, kFat32Ebpb = 64, kFatSerial = 3, kFatLabel = 7, kFatLabelLen = 11, kFatName = 18;

// NTFS: the OEM name and the volume serial number in the boot sector.
constexpr size_t kNtfsOem = 3, kNtfsSerial = 0x48;

bool has(std::span<const uint8_t> b, size_t off, std::string_view magic) {
  return b.size() >= off + magic.size() && std::memcmp(b.data() + off, magic.data(), magic.size()) == 0;
}

std::string uuid_string(const uint8_t* u) {
  static const char* hex = "0123456789abcdef";
  bool all_zero = true;
  for (int i = 0; i < 16; ++i) all_zero &= u[i] == 0;
  if (all_zero) return {};
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[u[i] >> 4];
    s += hex[u[i] & 15];
  }
  return s;
}

// A NUL-padded text field, cut at the first NUL and kept only if printable.
std::string text_field(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && p[i]; ++i) {
    if (p[i] < 0x20 || p[i] == 0x7f) return {};
    s += static_cast<char>(p[i]);
  }
  return s;
}

bool probe_ext(std::span<const uint8_t> b, FsProbe& out) {
  if (b.size() < kExtEnd || load_le16(&b[kExtMagic]) != EXT2_SUPER_MAGIC) return false;
  const uint32_t compat = load_le32(&b[kExtCompat]), incompat = load_le32(&b[kExtIncompat]),
                 ro_compat = load_le32(&b[kExtRoCompat]), flags = load_le32(&b[kExtFlags]);
  const bool journal = compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL;
  const bool beyond_ext3 = (ro_compat & ~kExtRoCompatKnown) || (incompat & ~kExt3IncompatKnown);
  if (incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV)
    out.type = kFsJbd;
  else if (flags & EXT2_FLAGS_TEST_FILESYS)
    out.type = kFsExt4Dev;
  else if (beyond_ext3)
    out.type = kFsExt4;
  else if (journal)
    out.type = kFsExt3;
  else if (!(incompat & ~kExt2IncompatKnown))
    out.type = kFsExt2;
  else
    return false;  // needs_recovery without a journal: blkid names it nothing either
  out.uuid = uuid_string(&b[kExtUuid]);
  out.label = text_field(&b[kExtLabel], EXT2_LABEL_LEN);
  return true;
}

bool probe_xfs(std::span<const uint8_t> b, FsProbe& out) {
  if (b.size() < kXfsEnd || !has(b, 0, "XFSB")) return false;
  out.type = kFsXfs;
  out.uuid = uuid_string(&b[kXfsUuid]);
  out.label = text_field(&b[kXfsLabel], kXfsLabelLen);
  return true;
}

bool probe_luks(std::span<const uint8_t> b, FsProbe& out) {
  if (b.size() < kLuksUuid + kLuksUuidLen || !has(b, 0, "LUKS\xba\xbe")) return false;
  out.type = kFsLuks;
  out.uuid = text_field(&b[kLuksUuid], kLuksUuidLen);
  if (load_be16(&b[kLuksVersion]) == 2) out.label = text_field(&b[kLuks2Label], kLuks2LabelLen);
  return true;
}

bool probe_lvm2(std::span<const uint8_t> b, FsProbe& out) {
  for (size_t s = 0; s < kLvmLabelSectors; ++s) {
    const size_t at = s * kLvmSector;
    if (!has(b, at, "LABELONE") || !has(b, at + kLvmType, "LVM2 001")) continue;
    if (b.size() < at + kLvmSector || load_le64(&b[at + kLvmSectorXl]) != s) continue;
    const size_t pv = at + load_le32(&b[at + kLvmOffsetXl]);
    out.type = kFsLvm2Member;
    if (pv >= at && pv + kLvmUuidLen <= b.size()) {
      // blkid groups the 32 characters 6-4-4-4-4-4-6.
      std::string raw = text_field(&b[pv], kLvmUuidLen);
      if (raw.size() == kLvmUuidLen) {
        size_t pos = 0;
        for (size_t len : {6, 4, 4, 4, 4, 4, 6}) {
          if (pos) out.uuid += '-';
          out.uuid += raw.substr(pos, len);
          pos += len;
        }
      }
    }
    return true;
  }
  return false;
}

// The signatures a hibernation image puts where swap's was, as blkid's "swsuspend" knows them: the kernel's swsusp
// (S1SUSPEND, S2SUSPEND), uswsusp (ULSUSPEND) and TuxOnIce (LINHIB0001); TuxOnIce's binary header starts the area.
constexpr std::string_view kHibernationSigs[] = {"S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001"};
constexpr std::string_view kTuxOnIceMagic("\xed\xc3\x02\xe9\x98\x56\xe5\x0c", 8);

bool probe_swap(std::span<const uint8_t> b, FsProbe& out) {
  SwapSignature s = find_swap_signature(b);
  if (!s.page || s.hibernation) return false;
  out.type = kFsSwap;
  if (!s.version0) {
    out.uuid = uuid_string(&b[kSwapUuid]);
    out.label = text_field(&b[kSwapLabel], kSwapLabelLen);
  }
  return true;
}

bool probe_btrfs(std::span<const uint8_t> b, FsProbe& out) {
  if (b.size() < kBtrfsLabel + kBtrfsLabelLen || !has(b, kBtrfsMagic, "_BHRfS_M")) return false;
  out.type = kFsBtrfs;
  out.uuid = uuid_string(&b[kBtrfsFsid]);
  out.label = text_field(&b[kBtrfsLabel], kBtrfsLabelLen);
  return true;
}

bool probe_ntfs(std::span<const uint8_t> b, FsProbe& out) {
  if (b.size() < 512 || !has(b, kNtfsOem, "NTFS    ")) return false;
  out.type = kFsNtfs;
  char s[17];
  std::snprintf(s, sizeof s, "%016llX", static_cast<unsigned long long>(load_le64(&b[kNtfsSerial])));
  if (load_le64(&b[kNtfsSerial])) out.uuid = s;
  return true;
}

bool probe_vfat(std::span<const uint8_t> b, FsProbe& out) {
  size_t ebpb;
  if (has(b, kFat32Ebpb + kFatName, "FAT32   "))
    ebpb = kFat32Ebpb;
  else if (has(b, kFat16Ebpb + kFatName, "FAT1"))
    ebpb = kFat16Ebpb;
  else
    return false;
  out.type = kFsVfat;
  const uint32_t serial = load_le32(&b[ebpb + kFatSerial]);
  char s[10];
  std::snprintf(s, sizeof s, "%04X-%04X", serial >> 16, serial & 0xffff);
  out.uuid = s;
  std::string label = text_field(&b[ebpb + kFatLabel], kFatLabelLen);
  while (!label.empty() && label.back() == ' ') label.pop_back();
  if (label != "NO NAME") out.label = label;
  return true;
}

// The most specific signatures first (ext's magic with its feature checks); vfat last, its signature being the
// weakest (a boot sector any of the others may also start with).
constexpr bool (*kProbers[])(std::span<const uint8_t>, FsProbe&) = {probe_ext,  probe_xfs,   probe_luks, probe_lvm2,
                                                                    probe_swap, probe_btrfs, probe_ntfs, probe_vfat};

}  // namespace

SwapSignature find_swap_signature(std::span<const uint8_t> head) {
  SwapSignature s;
  if (has(head, 0, kTuxOnIceMagic)) {
    s.page = kMinSwapPage;
    s.hibernation = true;
    return s;
  }
  for (uint64_t page = kMinSwapPage; page <= kMaxSwapPage; page *= 2) {
    const size_t at = page - kSwapSigLen;
    s.page = page;
    for (std::string_view sig : kHibernationSigs)
      if (has(head, at, sig)) s.hibernation = true;
    if (s.hibernation || has(head, at, "SWAPSPACE2")) return s;
    if (has(head, at, "SWAP-SPACE")) {
      s.version0 = true;
      return s;
    }
  }
  return SwapSignature();
}

std::vector<std::string> probe_fs_all(std::span<const uint8_t> head) {
  std::vector<std::string> types;
  for (auto probe : kProbers) {
    FsProbe p;
    if (probe(head, p)) types.push_back(std::move(p.type));
  }
  return types;
}

bool is_ext(std::string_view type) {
  return type == kFsExt2 || type == kFsExt3 || type == kFsExt4 || type == kFsExt4Dev;
}

FsProbe probe_fs_bytes(std::span<const uint8_t> head) {
  FsProbe out;
  for (auto probe : kProbers) {
    if (probe(head, out)) return out;
    out = FsProbe();
  }
  return out;
}

Result<FsProbe> probe_fs(BlockDevice& dev, uint64_t offset, uint64_t length) {
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(kProbeBytes, length)));
  if (buf.empty()) return FsProbe();
  VDKIT_RETURN_IF_ERROR(dev.read(offset, buf).Context("probing the file system at offset " + std::to_string(offset)));
  return probe_fs_bytes(buf);
}

}  // namespace vdkit::guestfs
