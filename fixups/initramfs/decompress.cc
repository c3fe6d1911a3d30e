// Member-exact inflation for initramfs segments: zlib, zstd and liblzma for the compressors whose end we must know;
// libarchive for the rest, which are then the last segment we can read.
#include "fixups/initramfs/decompress.h"

#include <archive.h>
#include <archive_entry.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>
#include <vector>

namespace vdkit::fixups {
namespace {

constexpr size_t kChunk = 1 << 16;

std::string at(size_t off) { return " at offset " + std::to_string(off); }

// Counts inflated bytes against the limit before handing them on.
class Bounded {
 public:
  Bounded(size_t off, uint64_t max_out, const InflateSink& sink) : off_(off), max_(max_out), sink_(sink) {}
  Status put(const char* p, size_t n) {
    if (n == 0) return Status::Ok();
    total_ += n;
    if (total_ > max_)
      return Status::Corrupt("initramfs: the archive" + at(off_) + " inflates to more than " + std::to_string(max_) +
                             " bytes");
    return sink_(p, n);
  }

 private:
  size_t off_;
  uint64_t max_, total_ = 0;
  const InflateSink& sink_;
};

Result<InflatedMember> inflate_gzip(std::string_view d, size_t off, Bounded& out) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return Status::Error(ENOMEM, "initramfs: cannot start zlib");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(d.data() + off));
  // zlib counts in uInt: feed at most 1 GiB at a time.
  size_t left = d.size() - off;
  std::vector<char> buf(kChunk);
  for (;;) {
    if (z.avail_in == 0) {
      if (left == 0) return Status::Corrupt("initramfs: gzip archive" + at(off) + " is truncated");
      z.avail_in = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
      left -= z.avail_in;
    }
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && !(rc == Z_BUF_ERROR && z.avail_out == 0))
      return Status::Corrupt("initramfs: gzip archive" + at(off) + " is corrupt" + (z.msg ? std::string(": ") + z.msg : ""));
    VDKIT_RETURN_IF_ERROR(out.put(buf.data(), buf.size() - z.avail_out));
    if (rc == Z_STREAM_END) return InflatedMember{z.total_in, "gzip", true};
  }
}

Result<InflatedMember> inflate_zstd(std::string_view d, size_t off, Bounded& out) {
  size_t frame = ZSTD_findFrameCompressedSize(d.data() + off, d.size() - off);
  if (ZSTD_isError(frame))
    return Status::Corrupt("initramfs: zstd frame" + at(off) + ": " + ZSTD_getErrorName(frame));
  std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> z(ZSTD_createDStream(), ZSTD_freeDStream);
  if (!z) return Status::Error(ENOMEM, "initramfs: cannot start zstd");
  ZSTD_inBuffer in{d.data() + off, frame, 0};
  std::vector<char> buf(kChunk);
  for (;;) {
    ZSTD_outBuffer o{buf.data(), buf.size(), 0};
    size_t rc = ZSTD_decompressStream(z.get(), &o, &in);
    if (ZSTD_isError(rc)) return Status::Corrupt("initramfs: zstd frame" + at(off) + ": " + ZSTD_getErrorName(rc));
    VDKIT_RETURN_IF_ERROR(out.put(buf.data(), o.pos));
    if (rc == 0) return InflatedMember{frame, "zstd", true};
    if (in.pos == in.size && o.pos < o.size) return Status::Corrupt("initramfs: zstd frame" + at(off) + " is truncated");
  }
}

Result<InflatedMember> inflate_xz(std::string_view d, size_t off, Bounded& out) {
  lzma_stream z = LZMA_STREAM_INIT;
  // The memory limit bounds the dictionary a hostile header may ask for (the kernel's own xz takes at most 64 MiB).
  if (lzma_stream_decoder(&z, 256u << 20, 0) != LZMA_OK) return Status::Error(ENOMEM, "initramfs: cannot start xz");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&z, lzma_end);
  z.next_in = reinterpret_cast<const uint8_t*>(d.data() + off);
  z.avail_in = d.size() - off;
  std::vector<char> buf(kChunk);
  for (;;) {
    z.next_out = reinterpret_cast<uint8_t*>(buf.data());
    z.avail_out = buf.size();
    lzma_ret rc = lzma_code(&z, LZMA_FINISH);
    if (rc != LZMA_OK && rc != LZMA_STREAM_END)
      return Status::Corrupt("initramfs: xz stream" + at(off) + " is corrupt (liblzma error " + std::to_string(rc) + ")");
    VDKIT_RETURN_IF_ERROR(out.put(buf.data(), buf.size() - z.avail_out));
    if (rc == LZMA_STREAM_END) return InflatedMember{z.total_in, "xz", true};
  }
}

Result<InflatedMember> inflate_other(std::string_view d, size_t off, Bounded& out) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return Status::Error(ENOMEM, "initramfs: cannot create a libarchive reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  auto err = [&](const std::string& what) {
    const char* msg = archive_error_string(a.get());  // may be null
    return Status::Corrupt("initramfs: archive" + at(off) + " " + what + ": " + (msg ? msg : "unknown error"));
  };
  if (archive_read_open_memory(a.get(), d.data() + off, d.size() - off) != ARCHIVE_OK) return err("cannot be read");
  struct archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return err("cannot be read");
  if (archive_filter_count(a.get()) <= 1)
    return Status::Corrupt("initramfs: data" + at(off) +
                           " is neither a cpio archive nor compressed in a format libarchive knows");
  const char* name = archive_filter_name(a.get(), 0);
  std::vector<char> chunk(kChunk);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), chunk.data(), chunk.size());
    if (n == 0) break;
    if (n < 0) return err("is corrupt");
    VDKIT_RETURN_IF_ERROR(out.put(chunk.data(), static_cast<size_t>(n)));
  }
  return InflatedMember{d.size() - off, name ? name : "unknown", false};
}

}  // namespace

Result<InflatedMember> inflate_member(std::string_view d, size_t off, uint64_t max_out, const InflateSink& sink) {
  if (off >= d.size()) return Status::Corrupt("initramfs: no data" + at(off));
  Bounded out(off, max_out, sink);
  std::string_view m = d.substr(off, 6);
  if (m.size() >= 2 && m[0] == '\x1f' && m[1] == '\x8b') return inflate_gzip(d, off, out);
  if (m.size() >= 4 && m.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) return inflate_zstd(d, off, out);
  if (m.size() == 6 && m == std::string_view("\xfd" "7zXZ\0", 6)) return inflate_xz(d, off, out);
  return inflate_other(d, off, out);
}

}  // namespace vdkit::fixups
