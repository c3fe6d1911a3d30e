// newc writer: 110-byte ASCII-hex headers, the name NUL-terminated and padded to 4 bytes, the data padded to 4.
#include "fixups/initramfs/cpio_writer.h"

#include <cstdio>
#include <sys/stat.h>

namespace vdkit::fixups {
namespace {

void pad4(std::string& s) { s.append((4 - s.size() % 4) % 4, '\0'); }

}  // namespace

Status CpioWriter::add(std::string_view name, uint32_t mode, std::string_view data) {
  if (finished_) return Status::Error(EINVAL, "cpio: archive already finished");
  if (name.empty() || name.size() >= 4096 || name.find('\0') != std::string_view::npos || name[0] == '/')
    return Status::Error(EINVAL, "cpio: bad entry name '" + std::string(name) + "'");
  if (data.size() > 0xffffffffu) return Status::Error(EFBIG, "cpio: " + std::string(name) + " is over 4 GiB");
  char h[111];
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  std::snprintf(h, sizeof h, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino_++, mode, 0u, 0u, 1u,
                0u, static_cast<unsigned>(data.size()), 0u, 0u, 0u, 0u, static_cast<unsigned>(name.size() + 1), 0u);
  out_.append(h, 110);
  out_.append(name);
  out_.push_back('\0');
  pad4(out_);
  out_.append(data);
  pad4(out_);
  return Status::Ok();
}

Status CpioWriter::add_file(std::string_view name, std::string_view data, uint32_t perm) {
  return add(name, S_IFREG | (perm & 07777), data);
}

Status CpioWriter::add_dir(std::string_view name, uint32_t perm) { return add(name, S_IFDIR | (perm & 07777), {}); }

std::string CpioWriter::finish() {
  if (!finished_) {
    (void)add("TRAILER!!!", 0, {});
    finished_ = true;
  }
  return out_;
}

}  // namespace vdkit::fixups
