// initramfs listing: our own bounded newc walker over each stacked archive; libarchive only decompresses.
#include "fixups/initramfs.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "blockcore/base/checked.h"

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

// Reads the newc headers of a decompressed stream as it arrives, keeping only names: memory stays bounded by
// the name limit however large the archive claims to be (libarchive's own cpio reader allocates whatever a
// header's namesize says, so it is used only to decompress).
class NewcStreamLister {
 public:
  explicit NewcStreamLister(std::vector<std::string>& out) : out_(out) {}

  // Feeds the next decompressed bytes. Returns an error for a corrupt header.
  Status feed(const char* p, size_t n) {
    while (n > 0) {
      if (skip_ > 0) {
        size_t k = static_cast<size_t>(std::min<uint64_t>(skip_, n));
        skip_ -= k, p += k, n -= k;
        continue;
      }
      if (done_) return Status::Ok();  // data after the last archive: ignored, as the kernel does
      if (between_ && *p == '\0') {  // zero padding between stacked archives
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
        return Status::Corrupt("initramfs: bad cpio header in the compressed archive at byte " +
                               std::to_string(consumed_ - buf_.size()));
      }
      uint32_t namesize;
      if (!hex8(std::string_view(buf_).substr(54, 8), &file_size_) ||
          !hex8(std::string_view(buf_).substr(94, 8), &namesize) || namesize == 0 ||
          namesize > kMaxCpioNameBytes)
        return Status::Corrupt("initramfs: bad cpio size field in the compressed archive at byte " +
                               std::to_string(consumed_ - buf_.size()));
      name_size_ = namesize;
      return Status::Ok();
    }
    std::string name = buf_.substr(kHeader, name_size_ - 1);
    // Padding: header+name to 4 bytes, then the data to 4 bytes.
    uint64_t name_pad = (4 - (kHeader + name_size_) % 4) % 4;
    skip_ = name_pad + file_size_ + (4 - file_size_ % 4) % 4;
    name_size_ = 0;
    buf_.clear();
    if (++entries_ > kMaxInitramfsEntries)
      return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsEntries) + " entries");
    if (name == "TRAILER!!!") {
      trailer_seen_ = true;
      between_ = true;
    } else {
      out_.push_back(std::move(name));
    }
    return Status::Ok();
  }

  static constexpr uint32_t kMaxCpioNameBytes = 4096;  // PATH_MAX
  std::vector<std::string>& out_;
  std::string buf_;
  uint32_t name_size_ = 0;
  uint32_t file_size_ = 0;
  uint64_t skip_ = 0;
  uint64_t consumed_ = 0;
  size_t entries_ = 0;
  bool between_ = false, trailer_seen_ = false, done_ = false;
};

// Decompresses d[off..] with libarchive (any filter it knows: gzip, xz, zstd, lz4, ...) and lists the newc
// archives inside with NewcStreamLister.
Status list_compressed(std::string_view d, size_t off, std::vector<std::string>& out) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return Status::Error(ENOMEM, "initramfs: cannot create a libarchive reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  auto err = [&](const std::string& what) {
    const char* msg = archive_error_string(a.get());  // may be null
    return Status::Corrupt("initramfs: archive at offset " + std::to_string(off) + " " + what + ": " +
                           (msg ? msg : "unknown error"));
  };
  if (archive_read_open_memory(a.get(), d.data() + off, d.size() - off) != ARCHIVE_OK)
    return err("cannot be read");
  struct archive_entry* e;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return err("cannot be read");
  if (archive_filter_count(a.get()) <= 1)
    return Status::Corrupt("initramfs: data at offset " + std::to_string(off) +
                           " is neither a cpio archive nor compressed in a format libarchive knows");
  NewcStreamLister lister(out);
  std::vector<char> chunk(1 << 16);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), chunk.data(), chunk.size());
    if (n == 0) break;
    if (n < 0) return err("is corrupt");
    VDKIT_RETURN_IF_ERROR(lister.feed(chunk.data(), static_cast<size_t>(n)));
  }
  if (!lister.saw_archive())
    return Status::Corrupt("initramfs: compressed data at offset " + std::to_string(off) + " holds no cpio archive");
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> list_initramfs(std::string_view data) {
  std::vector<std::string> out;
  size_t off = 0;
  for (int seg = 0; seg < kMaxInitramfsSegments && off < data.size(); ++seg) {
    if (is_newc(data, off)) {
      VDKIT_ASSIGN_OR_RETURN(size_t end, newc_end(data, off));
      VDKIT_RETURN_IF_ERROR(NewcStreamLister(out).feed(data.data() + off, end - off));
      off = end;
      continue;
    }
    // A compressed archive is the last segment the kernel reads.
    VDKIT_RETURN_IF_ERROR(list_compressed(data, off, out));
    return out;
  }
  if (out.empty() && data.empty()) return Status::Corrupt("initramfs: empty file");
  return out;
}

}  // namespace vdkit::fixups
