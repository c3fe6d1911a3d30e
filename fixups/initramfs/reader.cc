// initramfs reading: our own bounded newc walker over each stacked archive, plain or inflated by decompress.h.
#include "fixups/initramfs/reader.h"

#include <cstdint>
#include <cstring>
#include <memory>

#include "blockcore/base/checked.h"
#include "fixups/initramfs/decompress.h"

namespace vdkit::fixups {
namespace {

bool is_newc(std::string_view d, size_t off) {
  return off + 6 <= d.size() && (d.compare(off, 6, "070701") == 0 || d.compare(off, 6, "070702") == 0);
}

bool hex8(std::string_view s, uint32_t* out) {
  uint32_t v = 0;
  for (char c : s) {
    int x;
    if (c >= '0' && c <= '9')
      x = c - '0';
    else if (c >= 'a' && c <= 'f')
      x = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      x = c - 'A' + 10;
    else
      return false;
    v = v << 4 | static_cast<uint32_t>(x);
  }
  *out = v;
  return true;
}

// Where the uncompressed newc archive starting at off ends (after TRAILER!!!
// and its padding), checking every header against the data size.
Result<size_t> newc_end(std::string_view d, size_t off) {
  constexpr size_t kHeader = 110;
  size_t pos = off;
  for (size_t n = 0; n < kMaxInitramfsEntries; ++n) {
    if (!range_within(pos, kHeader, d.size()) || !is_newc(d, pos))
      return Status::Corrupt("initramfs: bad cpio header at offset " + std::to_string(pos));
    uint32_t filesize, namesize;
    if (!hex8(d.substr(pos + 54, 8), &filesize) || !hex8(d.substr(pos + 94, 8), &namesize) || namesize == 0)
      return Status::Corrupt("initramfs: bad cpio size field at offset " + std::to_string(pos));
    auto name_end = checked_add(pos + kHeader, namesize);
    if (!name_end || *name_end > d.size())
      return Status::Corrupt("initramfs: cpio name size " + std::to_string(namesize) + " at offset " +
                             std::to_string(pos) + " runs past the end");
    std::string_view name = d.substr(pos + kHeader, namesize - 1);
    size_t data_start = (*name_end + 3) & ~size_t{3};
    auto data_end = checked_add(data_start, filesize);
    if (!data_end || *data_end > d.size())
      return Status::Corrupt("initramfs: cpio file size " + std::to_string(filesize) + " at offset " +
                             std::to_string(pos) + " runs past the end");
    pos = (*data_end + 3) & ~size_t{3};
    if (name == "TRAILER!!!") {
      // The kernel skips zero padding between stacked archives.
      while (pos < d.size() && d[pos] == '\0') ++pos;
      return std::min(pos, d.size());
    }
  }
  return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsEntries) + " cpio entries");
}

// Reads the newc headers of a (decompressed) stream as it arrives. Memory stays bounded by the name limit and by
// what the caller keeps, however large an entry claims to be.
class NewcStreamReader {
 public:
  NewcStreamReader(InitramfsContents& out, const KeepContent& keep, uint64_t& kept_bytes, int segment)
      : out_(out), keep_(keep), kept_bytes_(kept_bytes), segment_(segment) {}

  // Feeds the next bytes. Returns an error for a corrupt header.
  Status feed(const char* p, size_t n) {
    while (n > 0) {
      if (skip_ > 0 || data_left_ > 0 || tail_ > 0) {
        uint64_t& part = skip_ > 0 ? skip_ : data_left_ > 0 ? data_left_ : tail_;
        size_t k = static_cast<size_t>(std::min<uint64_t>(part, n));
        if (&part == &data_left_ && keeping_) out_.entries.back().data.append(p, k);
        part -= k, p += k, n -= k;
        continue;
      }
      if (done_) return Status::Ok();  // data after the last archive: ignored, as the kernel does
      if (between_ && *p == '\0') {    // zero padding between stacked archives
        ++p, --n, ++consumed_;
        continue;
      }
      size_t want = need();
      size_t k = std::min(want - buf_.size(), n);
      buf_.append(p, k);
      p += k, n -= k, consumed_ += k;
      if (buf_.size() == want) VDKIT_RETURN_IF_ERROR(step());
    }
    return Status::Ok();
  }
  bool saw_archive() const { return entries_ > 0; }
  // The stream ended: an entry cut short is an error.
  Status finish() const {
    if (skip_ > 0 || data_left_ > 0 || tail_ > 0 || !buf_.empty())
      return Status::Corrupt("initramfs: cpio archive in segment " + std::to_string(segment_) + " is truncated");
    return Status::Ok();
  }

 private:
  static constexpr size_t kHeader = 110;
  size_t need() const { return name_size_ ? kHeader + name_size_ : kHeader; }

  Status step() {
    if (!name_size_) {
      between_ = false;
      if (!is_newc(buf_, 0)) {
        if (entries_ > 0 && trailer_seen_) {  // not another archive: the rest is not ours to read
          done_ = true;
          buf_.clear();
          return Status::Ok();
        }
        return Status::Corrupt("initramfs: bad cpio header in segment " + std::to_string(segment_) + " at byte " +
                               std::to_string(consumed_ - buf_.size()));
      }
      uint32_t namesize;
      if (!hex8(std::string_view(buf_).substr(14, 8), &mode_) ||
          !hex8(std::string_view(buf_).substr(54, 8), &file_size_) ||
          !hex8(std::string_view(buf_).substr(94, 8), &namesize) || namesize == 0 || namesize > kMaxCpioNameBytes)
        return Status::Corrupt("initramfs: bad cpio header field in segment " + std::to_string(segment_) +
                               " at byte " + std::to_string(consumed_ - buf_.size()));
      name_size_ = namesize;
      return Status::Ok();
    }
    std::string name = buf_.substr(kHeader, name_size_ - 1);
    // Padding: header+name to 4 bytes, then the data to 4 bytes.
    uint64_t name_pad = (4 - (kHeader + name_size_) % 4) % 4;
    skip_ = name_pad;
    data_left_ = file_size_;
    tail_ = (4 - file_size_ % 4) % 4;
    name_size_ = 0;
    buf_.clear();
    keeping_ = false;
    if (++entries_ > kMaxInitramfsEntries)
      return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsEntries) + " entries");
    if (name == "TRAILER!!!") {
      trailer_seen_ = true;
      between_ = true;
      return Status::Ok();
    }
    while (name.rfind("./", 0) == 0) name.erase(0, 2);
    while (!name.empty() && name[0] == '/') name.erase(0, 1);
    if (name.empty() || name == ".") return Status::Ok();
    CpioEntry e;
    e.name = std::move(name);
    e.mode = mode_;
    e.size = file_size_;
    e.segment = segment_;
    if (keep_ && keep_(e.name, e.mode, e.size)) {
      if (kept_bytes_ + e.size > kMaxInitramfsKeptBytes)
        return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsKeptBytes) +
                               " bytes of file content to keep");
      kept_bytes_ += e.size;
      e.kept = true;
      e.data.reserve(static_cast<size_t>(e.size));
      keeping_ = true;
    }
    out_.entries.push_back(std::move(e));
    return Status::Ok();
  }

  static constexpr uint32_t kMaxCpioNameBytes = 4096;  // PATH_MAX
  InitramfsContents& out_;
  const KeepContent& keep_;
  uint64_t& kept_bytes_;
  int segment_;
  std::string buf_;
  uint32_t name_size_ = 0;
  uint32_t mode_ = 0;
  uint32_t file_size_ = 0;
  uint64_t skip_ = 0;
  uint64_t consumed_ = 0;
  uint64_t data_left_ = 0;  // content bytes of the current entry still to come
  uint64_t tail_ = 0;       // its padding after them
  size_t entries_ = 0;
  bool keeping_ = false;
  bool between_ = false, trailer_seen_ = false, done_ = false;
};

}  // namespace

Result<InitramfsContents> read_initramfs(std::string_view data, const KeepContent& keep) {
  InitramfsContents out;
  uint64_t kept = 0;
  size_t off = 0;
  if (data.empty()) return Status::Corrupt("initramfs: empty file");
  for (int seg = 0; off < data.size(); ++seg) {
    if (seg >= kMaxInitramfsSegments)
      return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsSegments) + " stacked archives");
    if (is_newc(data, off)) {
      VDKIT_ASSIGN_OR_RETURN(size_t end, newc_end(data, off));
      NewcStreamReader r(out, keep, kept, seg);
      VDKIT_RETURN_IF_ERROR(r.feed(data.data() + off, end - off));
      VDKIT_RETURN_IF_ERROR(r.finish());
      out.segments.push_back({off, end - off, end - off, "none", true});
      off = end;
      continue;
    }
    NewcStreamReader r(out, keep, kept, seg);
    size_t entries_before = out.entries.size();
    auto inflated = inflate_member(data, off, kMaxInitramfsUnpackedBytes,
                                   [&](const char* p, size_t n) { return r.feed(p, n); });
    if (!inflated.ok() && seg > 0 && entries_before == out.entries.size()) {
      // Bytes after the archives that are none (a boot loader's padding, junk): the kernel reports them and keeps
      // what it unpacked. Listed as an undelimited segment, so nothing is ever appended after them.
      out.segments.push_back({off, data.size() - off, data.size() - off, "unrecognised data", false});
      break;
    }
    VDKIT_ASSIGN_OR_RETURN(InflatedMember m, std::move(inflated));
    if (!r.saw_archive())
      return Status::Corrupt("initramfs: compressed data at offset " + std::to_string(off) + " holds no cpio archive");
    VDKIT_RETURN_IF_ERROR(r.finish());
    size_t end = off + static_cast<size_t>(m.consumed);
    // The kernel skips zero padding after a compressed archive too.
    while (m.delimited && end < data.size() && data[end] == '\0') ++end;
    out.segments.push_back({off, end - off, m.consumed, m.compression, m.delimited});
    off = end;
    if (!m.delimited) break;
  }
  return out;
}

Result<std::vector<std::string>> list_initramfs(std::string_view data) {
  VDKIT_ASSIGN_OR_RETURN(InitramfsContents c, read_initramfs(data));
  std::vector<std::string> names;
  names.reserve(c.entries.size());
  for (auto& e : c.entries) names.push_back(std::move(e.name));
  return names;
}

}  // namespace vdkit::fixups
