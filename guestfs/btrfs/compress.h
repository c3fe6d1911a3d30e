// Btrfs compressed extents: zlib (zlib), lzo (liblzo2, in Btrfs's own per-sector framing) and zstd (libzstd).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "blockcore/base/status.h"

namespace vdkit::guestfs::btrfs {

// Btrfs compresses at most 128 KiB of file data into one extent.
constexpr uint64_t kMaxUncompressed = 128 * 1024;

// Decompresses `in` (a compressed extent as stored, padding included) into exactly out.size() bytes; a stream that
// ends early leaves the rest zero, as the kernel does. `sectorsize` is the lzo framing unit. Errors name `what`.
Status decompress(uint8_t compression, std::span<const uint8_t> in, std::span<uint8_t> out, uint32_t sectorsize,
                  const std::string& what);

}  // namespace vdkit::guestfs::btrfs
