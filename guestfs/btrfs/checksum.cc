// Btrfs checksum algorithms through Debian's libraries.
#include "guestfs/btrfs/checksum.h"

#include <ext2fs/ext2fs.h>
#include <gcrypt.h>
#include <xxhash.h>

#include <cstring>
#include <mutex>

#include "blockcore/base/bytes.h"
#include "guestfs/btrfs/format.h"

namespace vdkit::guestfs::btrfs {

namespace {
void init_gcrypt() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Only hashing is used: no secure memory, no entropy gathering.
    gcry_check_version(nullptr);
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
  });
}
}  // namespace

Result<Checksum> Checksum::for_type(uint16_t type) {
  Checksum c;
  c.type_ = type;
  switch (type) {
    case kCsumCrc32c: c.size_ = 4; c.name_ = "crc32c"; break;
    case kCsumXxhash64: c.size_ = 8; c.name_ = "xxhash64"; break;
    case kCsumSha256: c.size_ = 32; c.name_ = "sha256"; init_gcrypt(); break;
    case kCsumBlake2b: c.size_ = 32; c.name_ = "blake2b"; init_gcrypt(); break;
    default:
      return Status::Unsupported("Btrfs checksum type " + std::to_string(type) +
                                 " is not one this reader knows (crc32c, xxhash64, sha256, blake2b)");
  }
  return c;
}

void Checksum::compute(std::span<const uint8_t> data, uint8_t out[32]) const {
  std::memset(out, 0, kCsumSize);
  switch (type_) {
    case kCsumCrc32c:
      store_le32(out, ~ext2fs_crc32c_le(~0u, data.data(), data.size()));
      break;
    case kCsumXxhash64:
      store_le64(out, XXH64(data.data(), data.size(), 0));
      break;
    case kCsumSha256:
      gcry_md_hash_buffer(GCRY_MD_SHA256, out, data.data(), data.size());
      break;
    case kCsumBlake2b:
      gcry_md_hash_buffer(GCRY_MD_BLAKE2B_256, out, data.data(), data.size());
      break;
  }
}

bool Checksum::verify(std::span<const uint8_t> data, const uint8_t* stored) const {
  uint8_t sum[kCsumSize];
  compute(data, sum);
  return std::memcmp(sum, stored, size_) == 0;
}

uint32_t Checksum::name_hash(std::string_view name) {
  return ext2fs_crc32c_le(~1u, reinterpret_cast<const unsigned char*>(name.data()), name.size());
}

std::string profile_name(uint64_t type) {
  switch (type & kBgProfileMask) {
    case 0: return "single";
    case kBgRaid0: return "RAID0";
    case kBgRaid1: return "RAID1";
    case kBgDup: return "DUP";
    case kBgRaid10: return "RAID10";
    case kBgRaid5: return "RAID5";
    case kBgRaid6: return "RAID6";
    case kBgRaid1c3: return "RAID1C3";
    case kBgRaid1c4: return "RAID1C4";
    default: return "mixed profile bits 0x" + hex(type & kBgProfileMask);
  }
}

}  // namespace vdkit::guestfs::btrfs
