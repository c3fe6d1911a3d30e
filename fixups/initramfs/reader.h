// Reads a Linux initramfs: stacked newc cpio archives (early microcode first, vdkit's own segment last), each plain
// or compressed, walked as the kernel walks them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// Entries read before we stop (a real initrd holds a few thousand).
inline constexpr size_t kMaxInitramfsEntries = 1u << 20;
// Stacked archives followed (microcode, firmware, main image, vdkit's segment).
inline constexpr int kMaxInitramfsSegments = 16;
// Bytes one compressed segment may inflate to (real ones are tens of MiB; a bomb stops here).
inline constexpr uint64_t kMaxInitramfsUnpackedBytes = 2ull << 30;
// File contents kept in memory for the caller, summed over the whole image.
inline constexpr uint64_t kMaxInitramfsKeptBytes = 512ull << 20;

// One newc entry. Names are as archived, without a leading "./" or "/" ("usr/lib/modules/6.1.0/modules.dep").
struct CpioEntry {
  std::string name;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint64_t size = 0;
  int segment = 0;    // which stacked archive holds it
  bool kept = false;  // data holds the content (the caller asked for it)
  std::string data;
};

struct InitramfsSegment {
  uint64_t offset = 0;
  uint64_t length = 0;       // bytes of the file it spans, trailing zero padding included
  uint64_t data_length = 0;  // the archive or compressed member alone, without that padding
  // "none", "gzip", "zstd", "xz", libarchive's name for the others, or "unrecognised data" for bytes after the
  // archives that are none (kept out of every listing)
  std::string compression;
  // The end of this segment is known exactly. Only gzip, zstd, xz and plain archives are delimited here; after
  // another compressor (lz4, bzip2, lzo) the rest of the file cannot be read, so nothing may be appended.
  bool delimited = true;
};

struct InitramfsContents {
  std::vector<CpioEntry> entries;  // in archive order; a later entry of a name replaces an earlier one at unpack
  std::vector<InitramfsSegment> segments;
};

// Whether to keep an entry's content (name as in CpioEntry, mode, size).
using KeepContent = std::function<bool(std::string_view name, uint32_t mode, uint64_t size)>;

// Reads every segment of the initramfs image `data`. Corrupt input gives an error naming the offset; limits above.
Result<InitramfsContents> read_initramfs(std::string_view data, const KeepContent& keep = {});

// Every path in the initramfs image (names as archived, in order).
Result<std::vector<std::string>> list_initramfs(std::string_view data);

}  // namespace vdkit::fixups
