// Btrfs metadata checksums: crc32c (libext2fs's), xxhash64 (libxxhash), sha256 and blake2b-256 (libgcrypt).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "blockcore/base/status.h"

namespace vdkit::guestfs::btrfs {

class Checksum {
 public:
  // The algorithm of the superblock's csum_type; an unknown type is refused naming its number.
  static Result<Checksum> for_type(uint16_t type);
  // Computes the checksum of data into out (kCsumSize bytes, zero-padded past size()).
  void compute(std::span<const uint8_t> data, uint8_t out[32]) const;
  // Whether stored (the first size() bytes) matches data's checksum.
  bool verify(std::span<const uint8_t> data, const uint8_t* stored) const;
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }
  uint16_t type() const { return type_; }

  // Btrfs's name hash for directory and xattr items: crc32c seeded with ~1, not inverted.
  static uint32_t name_hash(std::string_view name);

 private:
  uint16_t type_ = 0;
  size_t size_ = 4;
  std::string name_ = "crc32c";
};

}  // namespace vdkit::guestfs::btrfs
