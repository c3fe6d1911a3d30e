// Byte sources (plain, gzip through zlib, zstd) and the tar member reader, with every header field checked.
#include "blockcore/xva/tar_reader.h"

#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"

namespace vdkit::xva {

namespace {

constexpr size_t kBlock = 512;
constexpr size_t kInputBytes = 256u << 10;

// Plain bytes from fd, after any bytes already peeked.
class FdSource final : public ByteSource {
 public:
  FdSource(int fd, std::string name, bool seekable, const std::atomic<bool>* cancel, std::vector<uint8_t> peeked)
      : fd_(fd), name_(std::move(name)), seekable_(seekable), cancel_(cancel), peeked_(std::move(peeked)) {}

  Result<size_t> read(uint8_t* p, size_t n) override {
    size_t got = 0;
    if (peek_pos_ < peeked_.size()) {
      got = std::min(n, peeked_.size() - peek_pos_);
      std::memcpy(p, peeked_.data() + peek_pos_, got);
      peek_pos_ += got;
    }
    while (got < n) {
      ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0) {
        if (errno == EINTR) {
          if (cancel_ && cancel_->load()) return Status::Error(ECANCELED, "interrupted");
          continue;
        }
        return Status::FromErrno(errno, "reading " + name_ + " at byte " + std::to_string(pos_ + got));
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    pos_ += got;
    return got;
  }

  Status skip(uint64_t n) override {
    if (!seekable_ || peek_pos_ < peeked_.size()) return ByteSource::skip(n);
    off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0 || static_cast<uint64_t>(end) < pos_ || n > static_cast<uint64_t>(end) - pos_)
      return Status::Corrupt(name_ + " ends before byte " + std::to_string(pos_ + n) + " (truncated)");
    if (::lseek(fd_, static_cast<off_t>(pos_ + n), SEEK_SET) < 0) return Status::FromErrno(errno, "seeking " + name_);
    pos_ += n;
    return Status::Ok();
  }

  uint64_t position() const override { return pos_; }
  bool positions_are_file_offsets() const override { return seekable_; }

 private:
  int fd_;
  std::string name_;
  bool seekable_;
  const std::atomic<bool>* cancel_;
  std::vector<uint8_t> peeked_;
  size_t peek_pos_ = 0;
  uint64_t pos_ = 0;
};

class GzipSource final : public ByteSource {
 public:
  GzipSource(std::unique_ptr<ByteSource> in, std::string name) : in_(std::move(in)), name_(std::move(name)) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, 15 + 32) == Z_OK;
    buf_.resize(kInputBytes);
  }
  ~GzipSource() override {
    if (ok_) inflateEnd(&z_);
  }
  Result<size_t> read(uint8_t* p, size_t n) override {
    if (!ok_) return Status::Error(ENOMEM, "cannot start a gzip decompressor");
    size_t got = 0;
    while (got < n && !done_) {
      if (z_.avail_in == 0) {
        VDKIT_ASSIGN_OR_RETURN(size_t k, in_->read(buf_.data(), buf_.size()));
        if (k == 0) {
          if (!member_ended_)
            return Status::Corrupt("the gzip stream ends in the middle (truncated) at byte " +
                                   std::to_string(pos_ + got) + " of its contents");
          done_ = true;
          break;
        }
        z_.next_in = buf_.data();
        z_.avail_in = static_cast<uInt>(k);
      }
      if (member_ended_) {  // another gzip member follows (concatenated gzip)
        if (inflateReset(&z_) != Z_OK) return Status::Corrupt(name_ + ": gzip reset failed");
        member_ended_ = false;
      }
      z_.next_out = p + got;
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, 1u << 30));
      int r = inflate(&z_, Z_NO_FLUSH);
      got = static_cast<size_t>(z_.next_out - p);
      if (r == Z_STREAM_END) {
        member_ended_ = true;
      } else if (r != Z_OK && r != Z_BUF_ERROR) {
        return Status::Corrupt("gzip data is damaged at byte " + std::to_string(pos_ + got) +
                               " of its contents (" + (z_.msg ? z_.msg : "inflate error") + ")");
      }
    }
    pos_ += got;
    return got;
  }
  uint64_t position() const override { return pos_; }
  const char* compression() const override { return "gzip"; }

 private:
  std::unique_ptr<ByteSource> in_;
  std::string name_;
  z_stream z_;
  bool ok_ = false;
  bool done_ = false;
  bool member_ended_ = false;
  std::vector<uint8_t> buf_;
  uint64_t pos_ = 0;
};

class ZstdSource final : public ByteSource {
 public:
  ZstdSource(std::unique_ptr<ByteSource> in, std::string name)
      : in_(std::move(in)), name_(std::move(name)), d_(ZSTD_createDStream()) {
    buf_.resize(kInputBytes);
  }
  ~ZstdSource() override { ZSTD_freeDStream(d_); }
  Result<size_t> read(uint8_t* p, size_t n) override {
    if (!d_) return Status::Error(ENOMEM, "cannot start a zstd decompressor");
    ZSTD_outBuffer out{p, n, 0};
    while (out.pos < n && !done_) {
      if (inb_.pos == inb_.size) {
        VDKIT_ASSIGN_OR_RETURN(size_t k, in_->read(buf_.data(), buf_.size()));
        if (k == 0) {
          if (!frame_ended_)
            return Status::Corrupt("the zstd stream ends in the middle (truncated) at byte " +
                                   std::to_string(pos_ + out.pos) + " of its contents");
          done_ = true;
          break;
        }
        inb_ = ZSTD_inBuffer{buf_.data(), k, 0};
      }
      size_t r = ZSTD_decompressStream(d_, &out, &inb_);
      if (ZSTD_isError(r))
        return Status::Corrupt("zstd data is damaged at byte " + std::to_string(pos_ + out.pos) +
                               " of its contents (" + ZSTD_getErrorName(r) + ")");
      frame_ended_ = r == 0;
    }
    pos_ += out.pos;
    return out.pos;
  }
  uint64_t position() const override { return pos_; }
  const char* compression() const override { return "zstd"; }

 private:
  std::unique_ptr<ByteSource> in_;
  std::string name_;
  ZSTD_DStream* d_;
  std::vector<uint8_t> buf_;
  ZSTD_inBuffer inb_{nullptr, 0, 0};
  bool done_ = false;
  bool frame_ended_ = true;
  uint64_t pos_ = 0;
};

// A numeric header field: octal digits (space/NUL padded), or GNU base-256 when the top bit is set.
Result<uint64_t> number(const uint8_t* p, size_t n, const std::string& what) {
  if (p[0] & 0x80) {
    uint64_t v = p[0] & 0x7f;
    for (size_t i = 1; i < n; ++i) {
      if (v >> 55) return Status::Corrupt(what + " does not fit in 64 bits");
      v = v << 8 | p[i];
    }
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && p[i] == ' ') ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return Status::Corrupt(what + " does not fit in 64 bits");
    v = v * 8 + (p[i] - '0');
  }
  for (; i < n; ++i)
    if (p[i] != ' ' && p[i] != 0) return Status::Corrupt(what + " is not an octal number");
  return v;
}

std::string field(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), strnlen(reinterpret_cast<const char*>(p), n)); }

}  // namespace

Status ByteSource::skip(uint64_t n) {
  std::vector<uint8_t> buf(std::min<uint64_t>(n, kInputBytes));
  while (n) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    VDKIT_ASSIGN_OR_RETURN(size_t got, read(buf.data(), k));
    if (got == 0) return Status::Corrupt("the stream ends " + std::to_string(n) + " bytes early (truncated)");
    n -= got;
  }
  return Status::Ok();
}

Status ByteSource::read_exact(uint8_t* p, size_t n, const std::string& what) {
  VDKIT_ASSIGN_OR_RETURN(size_t got, read(p, n));
  if (got < n)
    return Status::Corrupt("the stream ends in " + what + " (" + std::to_string(got) + " of " + std::to_string(n) +
                           " bytes; truncated)");
  return Status::Ok();
}

Compression detect_compression(const uint8_t* h, size_t n) {
  if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) return Compression::kGzip;
  if (n >= 4 && load_le32(h) == 0xfd2fb528) return Compression::kZstd;
  return Compression::kNone;
}

Result<std::unique_ptr<ByteSource>> open_byte_source(int fd, const std::string& name, bool seekable,
                                                     const std::atomic<bool>* cancel) {
  std::vector<uint8_t> head(4);
  auto probe = std::make_unique<FdSource>(fd, name, false, cancel, std::vector<uint8_t>{});
  VDKIT_ASSIGN_OR_RETURN(size_t got, probe->read(head.data(), head.size()));
  head.resize(got);
  Compression c = detect_compression(head.data(), head.size());
  auto plain = std::make_unique<FdSource>(fd, name, seekable && c == Compression::kNone, cancel, std::move(head));
  switch (c) {
    case Compression::kGzip: return std::unique_ptr<ByteSource>(std::make_unique<GzipSource>(std::move(plain), name));
    case Compression::kZstd: return std::unique_ptr<ByteSource>(std::make_unique<ZstdSource>(std::move(plain), name));
    case Compression::kNone: break;
  }
  return std::unique_ptr<ByteSource>(std::move(plain));
}

Status TarReader::skip_rest() {
  uint64_t n = left_ + padding_;
  left_ = padding_ = 0;
  Status st = src_.skip(n);
  return st.ok() ? st : st.Context(name_);
}

Status TarReader::read_data(uint8_t* p, size_t n) {
  if (n > left_) return Status::Invalid(name_ + ": internal error: reading past a tar member");
  VDKIT_RETURN_IF_ERROR(src_.read_exact(p, n, "a tar member's data").Context(name_));
  left_ -= n;
  return Status::Ok();
}

Result<bool> TarReader::next(TarEntry& e) {
  VDKIT_RETURN_IF_ERROR(skip_rest());
  std::string long_name;
  bool have_long_name = false;
  uint64_t pax_size = 0;
  bool have_pax_size = false;
  for (;;) {
    uint8_t h[kBlock];
    uint64_t at = src_.position();
    VDKIT_ASSIGN_OR_RETURN(size_t got, src_.read(h, kBlock));
    if (got == 0)
      return Status::Corrupt(name_ + ": the archive ends at byte " + std::to_string(at) +
                             " without its end-of-archive blocks (truncated between two members)");
    if (got < kBlock)
      return Status::Corrupt(name_ + ": the archive ends inside a tar header at byte " + std::to_string(at) +
                             " (truncated)");
    bool zero = true;
    for (uint8_t b : h) zero &= b == 0;
    if (zero) return false;
    const std::string where = name_ + ": tar header at byte " + std::to_string(at);
    VDKIT_ASSIGN_OR_RETURN(uint64_t sum, number(h + 148, 8, where + ", field chksum"));
    uint64_t computed = 0;
    for (size_t i = 0; i < kBlock; ++i) computed += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum != computed)
      return Status::Corrupt(where + ": header checksum is " + std::to_string(sum) + " but the header sums to " +
                             std::to_string(computed) + " (not a tar archive, or damaged)");
    VDKIT_ASSIGN_OR_RETURN(uint64_t size, number(h + 124, 12, where + ", field size"));
    char type = static_cast<char>(h[156]);
    if (type == 'L' || type == 'x') {
      if (size > (type == 'L' ? kMaxNameBytes : kMaxPaxHeaderBytes))
        return Status::Corrupt(where + ": an extended header of " + std::to_string(size) +
                               " bytes, more than the limit of " +
                               std::to_string(type == 'L' ? kMaxNameBytes : kMaxPaxHeaderBytes));
      std::string data(size, '\0');
      VDKIT_RETURN_IF_ERROR(
          src_.read_exact(reinterpret_cast<uint8_t*>(data.data()), size, "an extended tar header").Context(name_));
      VDKIT_RETURN_IF_ERROR(src_.skip(div_round_up(size, kBlock) * kBlock - size).Context(name_));
      if (type == 'L') {
        long_name = data.substr(0, data.find('\0'));
        have_long_name = true;
        continue;
      }
      // pax records: "LEN key=value\n".
      for (size_t p = 0; p < data.size();) {
        size_t sp = data.find(' ', p);
        if (sp == std::string::npos) break;
        uint64_t len = std::strtoull(data.c_str() + p, nullptr, 10);
        if (len <= sp - p || p + len > data.size()) return Status::Corrupt(where + ": a pax record is malformed");
        std::string rec = data.substr(sp + 1, p + len - sp - 2);
        if (rec.rfind("path=", 0) == 0) {
          long_name = rec.substr(5);
          have_long_name = true;
        } else if (rec.rfind("size=", 0) == 0) {
          pax_size = std::strtoull(rec.c_str() + 5, nullptr, 10);
          have_pax_size = true;
        }
        p += len;
      }
      continue;
    }
    if (type == 'g') {  // pax global header: nothing we use
      VDKIT_RETURN_IF_ERROR(src_.skip(div_round_up(size, kBlock) * kBlock).Context(name_));
      continue;
    }
    e.header_offset = at;
    e.type = type;
    e.size = have_pax_size ? pax_size : size;
    if (have_long_name) {
      e.name = long_name;
    } else {
      std::string prefix = std::memcmp(h + 257, "ustar", 5) == 0 ? field(h + 345, 155) : "";
      e.name = (prefix.empty() ? "" : prefix + "/") + field(h, 100);
    }
    if (e.name.size() > kMaxNameBytes) return Status::Corrupt(where + ": member name is too long");
    // Folders, links and devices carry no data, whatever their size field says.
    if (type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6') e.size = 0;
    e.data_offset = src_.position();
    left_ = e.size;
    padding_ = div_round_up(e.size, kBlock) * kBlock - e.size;
    return true;
  }
}

}  // namespace vdkit::xva
