// Inflates one compressed member of an initramfs and says exactly where it ended, so the archives after it (vdkit's
// appended segment) can be found as the kernel finds them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// Receives the inflated bytes in order.
using InflateSink = std::function<Status(const char* p, size_t n)>;

struct InflatedMember {
  uint64_t consumed = 0;     // compressed bytes the member took (all of the rest when !delimited)
  std::string compression;   // "gzip", "zstd", "xz", or libarchive's filter name
  bool delimited = true;     // consumed is exact
};

// Inflates the member that starts at data[off]: gzip (zlib), zstd (one frame), xz (one stream, liblzma) with the
// exact end; anything else libarchive knows (lz4, bzip2, lzma, lzo) up to the end of the data. More than
// max_out inflated bytes is an error, as is data no decompressor recognises.
Result<InflatedMember> inflate_member(std::string_view data, size_t off, uint64_t max_out, const InflateSink& sink);

}  // namespace vdkit::fixups
