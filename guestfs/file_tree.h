// FileTree: read-only, inode-level access to a guest file system that vdkit reads itself (XFS, Btrfs), shared by
// the GuestFs adapter (inspection, fixup planning) and the generic read-only FUSE view.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"
#include "guestfs/free_space.h"

namespace vdkit::guestfs {

// What lstat(2) would say of one inode. Times are seconds and nanoseconds since the epoch.
struct TreeStat {
  uint64_t ino = 0;
  uint32_t mode = 0;  // S_IFMT type bits and permission bits, as st_mode
  uint32_t uid = 0, gid = 0;
  uint64_t nlink = 1;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units, as st_blocks
  uint64_t rdev = 0;    // major/minor of a device node, as makedev() packs them
  timespec atime{}, mtime{}, ctime{};
};

struct TreeEntry {
  std::string name;  // never "." or ".."
  uint64_t ino = 0;
  uint32_t type = 0;  // S_IFMT bits of the inode, 0 when the directory does not record it (XFS without ftype)
};

// Inode numbers are the file system's own (a reader with several roots, such as Btrfs subvolumes, makes them
// unique across what it shows). Errors: ENOENT for a name that is not there, ENOTDIR / EISDIR / EINVAL for the
// wrong kind of inode, EUCLEAN (Status::Corrupt) for metadata that fails its checks, naming the block or inode.
class FileTree {
 public:
  virtual ~FileTree() = default;
  virtual uint64_t root_ino() const = 0;
  virtual Result<TreeStat> stat(uint64_t ino) = 0;
  virtual Result<uint64_t> lookup(uint64_t dir_ino, std::string_view name) = 0;
  // Every entry of a directory, in the file system's own order.
  virtual Status read_dir(uint64_t dir_ino, std::vector<TreeEntry>& out) = 0;
  // Reads up to buf.size() bytes of a regular file at offset; holes and unwritten extents read as zeros. Returns
  // the bytes read: less than asked only at the end of the file.
  virtual Result<size_t> read(uint64_t ino, uint64_t offset, std::span<uint8_t> buf) = 0;
  virtual Result<std::string> read_link(uint64_t ino) = 0;
  // Extended attributes ("user.x", "security.selinux", "trusted.x", "system.posix_acl_access"); empty by default.
  virtual Status list_xattrs(uint64_t /*ino*/, std::vector<std::string>& out) {
    out.clear();
    return Status::Ok();
  }
  virtual Result<std::string> get_xattr(uint64_t /*ino*/, const std::string& name) {
    return Status::Error(ENODATA, "no extended attribute " + name);
  }
  // "xfs on partition 2": for messages.
  virtual std::string describe() const = 0;
  // The map of blocks this file system does not use (guestfs/free_space.h); nullptr when the reader has none.
  virtual FreeSpaceMap* free_space() { return nullptr; }
  // Warnings about the state of what was read ("XFS log is dirty: ..."), for inspection reports.
  virtual std::vector<std::string> warnings() const { return {}; }
};

using FileTreePtr = std::shared_ptr<FileTree>;

// A GuestFs over a FileTree: read-only (write_file is EROFS, naming --kernel), symbolic links followed inside the
// guest (at most kMaxSymlinkHops), never into the host.
class GuestFs;
std::unique_ptr<GuestFs> make_tree_guest_fs(FileTreePtr tree);

// Resolves a guest-absolute path to an inode, following symbolic links (the last one too when follow_last).
Result<uint64_t> resolve_tree_path(FileTree& tree, const std::string& path, bool follow_last);

}  // namespace vdkit::guestfs
