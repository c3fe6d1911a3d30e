// Checks before writing into an ext2/3/4 file system: the structures a write relies on must agree, or the write
// could allocate a block that is in use, or link into a directory that is already broken. Each check names what is
// wrong; the caller refuses unless the user forces the write. The checks only read, and e2fsck remains the judge
// of everything they do not cover.
#pragma once

#include <ext2fs/ext2fs.h>

#include <string>

#include "blockcore/base/status.h"

namespace vdkit::ext2 {

// The superblock's state and error records, the group descriptors (ext2fs_check_desc: bitmaps and inode tables
// inside their groups and not overlapping), and each group's free block and inode counts against the bitmaps
// (the superblock's totals are not journaled and may lag, so they are not compared). The bitmaps must be loaded.
Status check_before_write(ext2_filsys fs);

// The folder `dir` (reached as `path`, for messages): a directory inode in use, whose blocks read back with valid
// checksums and whose every entry names an inode inside the file system that the inode bitmap marks in use.
Status check_directory(ext2_filsys fs, ext2_ino_t dir, const std::string& path);

}  // namespace vdkit::ext2
