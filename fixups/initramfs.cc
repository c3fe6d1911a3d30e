// initramfs listing: walks uncompressed newc headers to find where each stacked archive ends, libarchive reads each.
#include "fixups/initramfs.h"

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "blockcore/checked.h"

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

Status list_with_libarchive(std::string_view d, size_t off, std::vector<std::string>& out) {
  std::unique_ptr<struct archive, int (*)(struct archive*)> a(archive_read_new(), archive_read_free);
  if (!a) return Status::Error(ENOMEM, "initramfs: cannot create a libarchive reader");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_cpio(a.get());
  if (archive_read_open_memory(a.get(), d.data() + off, d.size() - off) != ARCHIVE_OK)
    return Status::Corrupt("initramfs: archive at offset " + std::to_string(off) +
                           " is not a cpio archive libarchive can read: " + archive_error_string(a.get()));
  struct archive_entry* e;
  while (true) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      const char* msg = archive_error_string(a.get());
      return Status::Corrupt("initramfs: archive at offset " + std::to_string(off) + ": " + (msg ? msg : "error"));
    }
    if (out.size() >= kMaxInitramfsEntries)
      return Status::Corrupt("initramfs: more than " + std::to_string(kMaxInitramfsEntries) + " entries");
    const char* p = archive_entry_pathname(e);
    if (p && std::strcmp(p, "TRAILER!!!") != 0) out.emplace_back(p);
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<std::string>> list_initramfs(std::string_view data) {
  std::vector<std::string> out;
  size_t off = 0;
  for (int seg = 0; seg < kMaxInitramfsSegments && off < data.size(); ++seg) {
    if (is_newc(data, off)) {
      VDKIT_ASSIGN_OR_RETURN(size_t end, newc_end(data, off));
      VDKIT_RETURN_IF_ERROR(list_with_libarchive(data.substr(0, end), off, out));
      off = end;
      continue;
    }
    // A compressed archive is the last segment the kernel reads.
    VDKIT_RETURN_IF_ERROR(list_with_libarchive(data, off, out));
    return out;
  }
  if (out.empty() && data.empty()) return Status::Corrupt("initramfs: empty file");
  return out;
}

}  // namespace vdkit::fixups
