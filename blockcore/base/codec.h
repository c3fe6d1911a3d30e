// Compression codecs used by the formats: raw deflate (qcow2 "zlib"), zlib streams (VMDK grains), zstd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit {

enum class Codec { kDeflate /* raw deflate, qcow2 zlib type */, kZlib /* RFC 1950, VMDK */, kZstd };

// Inflates src into exactly dst.size() bytes. Trailing bytes after the end of
// the compressed stream are allowed (images round compressed data up to
// sectors). Fails with EINVAL if the stream is corrupt or yields too little.
// Thread-safe (per-thread decompressor state).
Status decompress(Codec codec, std::span<const uint8_t> src, std::span<uint8_t> dst);

// libdeflate's level used when none is asked for. Its level 4 already makes output no larger than zlib's default
// level 6, which qemu-img -c uses (measured on the real and the aged Debian guest of bench/convert), in about 70%
// of the time of libdeflate's own level 6; higher levels buy under 1% more (bench/RESULTS.md).
inline constexpr int kDefaultDeflateLevel = 4;

// Compresses src; returns the compressed bytes, or an empty vector when the
// result would not be smaller than max_out bytes. level: 0 = the codec's default.
std::vector<uint8_t> compress(Codec codec, std::span<const uint8_t> src, size_t max_out, int level = 0);

// True when every byte of buf is zero (fast, word at a time).
bool is_all_zero(const uint8_t* buf, size_t len);

}  // namespace vdkit
