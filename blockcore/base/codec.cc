// Codec implementation over libdeflate and libzstd, with per-thread (de)compressor objects.
#include "blockcore/base/codec.h"

#include <libdeflate.h>
#include <zstd.h>

#include <cstring>
#include <memory>

namespace vdkit {

namespace {

struct DeflateState {
  libdeflate_decompressor* d = nullptr;
  libdeflate_compressor* c[13] = {};
  ZSTD_DCtx* zd = nullptr;
  ZSTD_CCtx* zc = nullptr;
  ~DeflateState() {
    if (d) libdeflate_free_decompressor(d);
    for (auto* x : c)
      if (x) libdeflate_free_compressor(x);
    if (zd) ZSTD_freeDCtx(zd);
    if (zc) ZSTD_freeCCtx(zc);
  }
  libdeflate_decompressor* dec() {
    if (!d) d = libdeflate_alloc_decompressor();
    return d;
  }
  libdeflate_compressor* comp(int level) {
    if (level < 1 || level > 12) level = kDefaultDeflateLevel;
    if (!c[level]) c[level] = libdeflate_alloc_compressor(level);
    return c[level];
  }
};

thread_local DeflateState t_state;

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::kDeflate: return "deflate";
    case Codec::kZlib: return "zlib";
    case Codec::kZstd: return "zstd";
  }
  return "?";
}

Status zstd_decompress(std::span<const uint8_t> src, std::span<uint8_t> dst) {
  if (!t_state.zd) t_state.zd = ZSTD_createDCtx();
  if (!t_state.zd) return Status::Error(ENOMEM, "cannot allocate a zstd decompressor");
  ZSTD_DCtx_reset(t_state.zd, ZSTD_reset_session_only);
  ZSTD_inBuffer in{src.data(), src.size(), 0};
  ZSTD_outBuffer out{dst.data(), dst.size(), 0};
  // Stream until the output is full; data after the frame is ignored, as QEMU does.
  while (out.pos < out.size) {
    size_t before_in = in.pos, before_out = out.pos;
    size_t r = ZSTD_decompressStream(t_state.zd, &out, &in);
    if (ZSTD_isError(r)) return Status::Corrupt(std::string("corrupt zstd data: ") + ZSTD_getErrorName(r));
    if (r == 0 && out.pos < out.size) break;  // frame ended early
    if (in.pos == before_in && out.pos == before_out) break;  // no progress: input exhausted
  }
  if (out.pos != out.size)
    return Status::Corrupt("zstd data inflates to " + std::to_string(out.pos) + " bytes, expected " +
                           std::to_string(out.size));
  return Status::Ok();
}

}  // namespace

Status decompress(Codec codec, std::span<const uint8_t> src, std::span<uint8_t> dst) {
  if (codec == Codec::kZstd) return zstd_decompress(src, dst);
  libdeflate_decompressor* d = t_state.dec();
  if (!d) return Status::Error(ENOMEM, "cannot allocate a deflate decompressor");
  size_t in_used = 0, out_got = 0;
  libdeflate_result r =
      codec == Codec::kDeflate
          ? libdeflate_deflate_decompress_ex(d, src.data(), src.size(), dst.data(), dst.size(), &in_used, &out_got)
          : libdeflate_zlib_decompress_ex(d, src.data(), src.size(), dst.data(), dst.size(), &in_used, &out_got);
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
    return Status::Corrupt(std::string("corrupt ") + codec_name(codec) + " data: inflates to more than " +
                           std::to_string(dst.size()) + " bytes");
  if (r != LIBDEFLATE_SUCCESS) return Status::Corrupt(std::string("corrupt ") + codec_name(codec) + " data");
  if (out_got != dst.size()) {
    // A short last grain is legal for some writers; zero-fill the rest.
    std::memset(dst.data() + out_got, 0, dst.size() - out_got);
  }
  return Status::Ok();
}

std::vector<uint8_t> compress(Codec codec, std::span<const uint8_t> src, size_t max_out, int level) {
  std::vector<uint8_t> out;
  if (codec == Codec::kZstd) {
    if (!t_state.zc) t_state.zc = ZSTD_createCCtx();
    if (!t_state.zc) return out;
    out.resize(std::max(ZSTD_compressBound(src.size()), max_out));
    size_t n = ZSTD_compressCCtx(t_state.zc, out.data(), out.size(), src.data(), src.size(), level ? level : 3);
    if (ZSTD_isError(n) || n >= max_out) return {};
    out.resize(n);
    return out;
  }
  libdeflate_compressor* c = t_state.comp(level ? level : kDefaultDeflateLevel);
  if (!c) return out;
  size_t bound = codec == Codec::kDeflate ? libdeflate_deflate_compress_bound(c, src.size())
                                          : libdeflate_zlib_compress_bound(c, src.size());
  out.resize(bound);
  size_t n = codec == Codec::kDeflate ? libdeflate_deflate_compress(c, src.data(), src.size(), out.data(), out.size())
                                      : libdeflate_zlib_compress(c, src.data(), src.size(), out.data(), out.size());
  if (n == 0 || n >= max_out) return {};
  out.resize(n);
  return out;
}

bool is_all_zero(const uint8_t* buf, size_t len) {
  size_t i = 0;
  for (; i < len && (reinterpret_cast<uintptr_t>(buf + i) & 7); ++i)
    if (buf[i]) return false;
  for (; i + 32 <= len; i += 32) {
    uint64_t a, b, c, d;
    std::memcpy(&a, buf + i, 8);
    std::memcpy(&b, buf + i + 8, 8);
    std::memcpy(&c, buf + i + 16, 8);
    std::memcpy(&d, buf + i + 24, 8);
    if (a | b | c | d) return false;
  }
  for (; i < len; ++i)
    if (buf[i]) return false;
  return true;
}

}  // namespace vdkit
