// Lists the files of a Linux initramfs: stacked cpio archives (early microcode first), each plain or compressed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// Entries listed before we stop (a real initrd holds a few thousand).
inline constexpr size_t kMaxInitramfsEntries = 1u << 20;
// Stacked archives followed (microcode, firmware, main image).
inline constexpr int kMaxInitramfsSegments = 16;

// Every path in the initramfs image `data` (gzip, xz, zstd, lz4, bzip2 or plain
// newc cpio, with any number of uncompressed cpio archives in front, as the
// kernel reads them). Corrupt input gives an error naming the offset.
Result<std::vector<std::string>> list_initramfs(std::string_view data);

}  // namespace vdkit::fixups
