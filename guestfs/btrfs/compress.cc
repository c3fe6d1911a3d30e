// Decompression of Btrfs extents.
#include "guestfs/btrfs/compress.h"

#include <lzo/lzo1x.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "blockcore/base/bytes.h"
#include "guestfs/btrfs/format.h"

namespace vdkit::guestfs::btrfs {

namespace {

Status inflate_zlib(std::span<const uint8_t> in, std::span<uint8_t> out, const std::string& what) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return Status::Error(ENOMEM, what + ": cannot start zlib");
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int r = Z_OK;
  while (z.avail_out > 0 && r == Z_OK) r = inflate(&z, Z_NO_FLUSH);
  inflateEnd(&z);
  if (r != Z_OK && r != Z_STREAM_END && !(r == Z_BUF_ERROR && z.avail_out == 0))
    return Status::Corrupt(what + ": zlib data is damaged (" + std::to_string(r) + ")");
  return Status::Ok();
}

Status decompress_zstd(std::span<const uint8_t> in, std::span<uint8_t> out, const std::string& what) {
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) return Status::Error(ENOMEM, what + ": cannot start zstd");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  // Btrfs pads the frame to a sector with zeros: stop at the frame's end or a full output.
  while (ob.pos < ob.size && ib.pos < ib.size) {
    size_t r = ZSTD_decompressStream(d.get(), &ob, &ib);
    if (ZSTD_isError(r)) return Status::Corrupt(what + ": zstd data is damaged (" + ZSTD_getErrorName(r) + ")");
    if (r == 0) break;
  }
  return Status::Ok();
}

// A 4-byte total length, then segments: a 4-byte length and that many bytes of lzo1x, each decompressing to at
// most one sector. A segment header never straddles a sector boundary: fewer than 4 bytes left in a sector are
// padding.
Status decompress_lzo(std::span<const uint8_t> in, std::span<uint8_t> out, uint32_t sectorsize,
                      const std::string& what) {
  static const bool ok = lzo_init() == LZO_E_OK;
  if (!ok) return Status::IoError(what + ": cannot start liblzo2");
  if (in.size() < 4) return Status::Corrupt(what + ": lzo data shorter than its header");
  uint64_t total = load_le32(in.data());
  if (total > in.size() || total < 4)
    return Status::Corrupt(what + ": lzo total length " + std::to_string(total) + " does not fit the extent's " +
                           std::to_string(in.size()) + " bytes");
  size_t pos = 4, done = 0;
  while (pos < total && done < out.size()) {
    size_t left_in_sector = sectorsize - pos % sectorsize;
    if (left_in_sector < 4) {
      pos += left_in_sector;
      continue;
    }
    if (total - pos < 4) return Status::Corrupt(what + ": lzo segment header cut short at byte " + std::to_string(pos));
    uint64_t seg = load_le32(in.data() + pos);
    pos += 4;
    if (seg > total - pos || seg > sectorsize + sectorsize / 16 + 64 + 3 /* lzo1x worst case */)
      return Status::Corrupt(what + ": lzo segment of " + std::to_string(seg) + " bytes at byte " + std::to_string(pos - 4));
    lzo_uint n = std::min<size_t>(sectorsize, out.size() - done);
    // The last segment may decompress to less than a sector; lzo refuses to stop short, so use a sector buffer.
    uint8_t buf[65536];
    lzo_uint got = sectorsize;
    int r = lzo1x_decompress_safe(in.data() + pos, seg, buf, &got, nullptr);
    if (r != LZO_E_OK || got > sectorsize)
      return Status::Corrupt(what + ": lzo segment at byte " + std::to_string(pos - 4) + " is damaged (" +
                             std::to_string(r) + ")");
    n = std::min<lzo_uint>(n, got);
    std::memcpy(out.data() + done, buf, n);
    done += n;
    pos += seg;
  }
  return Status::Ok();
}

}  // namespace

Status decompress(uint8_t compression, std::span<const uint8_t> in, std::span<uint8_t> out, uint32_t sectorsize,
                  const std::string& what) {
  std::fill(out.begin(), out.end(), 0);
  switch (compression) {
    case kCompressZlib: return inflate_zlib(in, out, what);
    case kCompressLzo: return decompress_lzo(in, out, sectorsize, what);
    case kCompressZstd: return decompress_zstd(in, out, what);
    default: return Status::Unsupported(what + ": unknown compression type " + std::to_string(compression));
  }
}

}  // namespace vdkit::guestfs::btrfs
