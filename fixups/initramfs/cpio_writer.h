// Writes a newc ("070701") cpio archive, the format the kernel unpacks an initramfs from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// One archive, built in memory: entries in the order added, then the trailer. Names are relative
// ("usr/lib/modules/6.1.0/modules.dep"); nlink is 1 and mtime 0, so the same input gives the same bytes.
class CpioWriter {
 public:
  // A regular file with permission bits `perm` (0644).
  Status add_file(std::string_view name, std::string_view data, uint32_t perm = 0644);
  // A directory (only for folders the image does not have: the kernel replaces whatever is at the name).
  Status add_dir(std::string_view name, uint32_t perm = 0755);
  // The archive with its TRAILER!!!, padded to a multiple of 4 bytes (the kernel reads the next archive, if any,
  // from a 4-byte boundary).
  std::string finish();

 private:
  Status add(std::string_view name, uint32_t mode, std::string_view data);
  std::string out_;
  uint32_t ino_ = 1;
  bool finished_ = false;
};

}  // namespace vdkit::fixups
