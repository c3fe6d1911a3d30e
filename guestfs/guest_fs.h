// GuestFs: the file-system interface inspection and the fixup rules work on (a folder, ext2/3/4, or a mount table).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"
#include "guestfs/free_space.h"

namespace vdkit::guestfs {

// The most a guest config file, kernel config or initrd may hold before we
// refuse to read it (initrds of real distributions are tens of MiB).
inline constexpr size_t kMaxGuestFileBytes = 256u << 20;
// Symbolic links followed while resolving one path (as Linux's MAXSYMLINKS).
inline constexpr int kMaxSymlinkHops = 40;

// Paths are absolute guest paths ("/etc/fstab"); symbolic links are followed
// inside the guest, never into the host. Errors carry ENOENT for a missing
// file, EROFS when the file system was opened read-only.
//
// The backends: a host folder (open_folder_guest), ext2/3/4 through libext2fs
// (guestfs/ext2/ext2_guest_fs.h), and several of them as one tree
// (MountedGuestFs). A file system vdkit cannot edit itself (XFS, Btrfs) is
// mounted by the kernel (guestfs/kernel_mount.*, the XFS issue) and reached
// as the folder backend over the mount point: open_folder_guest is what that
// backend returns, so everything above sees the same interface either way.
class GuestFs {
 public:
  virtual ~GuestFs() = default;
  // The whole content of a regular file; EFBIG above max_bytes.
  virtual Result<std::string> read_file(const std::string& path, size_t max_bytes = kMaxGuestFileBytes) = 0;
  virtual bool is_file(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  // Names in a folder (without "." and ".."), sorted; empty when it is not a folder.
  virtual std::vector<std::string> list_dir(const std::string& path) = 0;
  // Replaces (or creates) a regular file with data, keeping the mode, owner
  // and links of an existing file; a new file gets mode 0644, owner root.
  virtual Status write_file(const std::string& path, std::string_view data) = 0;
  virtual bool writable() const = 0;
  // What this is, for messages ("folder /mnt/guest", "ext4 on partition 1").
  virtual std::string describe() const = 0;
  // The map of blocks this file system does not use, from backends that read its device themselves (ext2/3/4);
  // nullptr from a folder, whose device vdkit does not see, and from a mount table, which spans several devices.
  virtual FreeSpaceMap* free_space() { return nullptr; }
  // Bytes free for new data on the file system holding `path` (what a write of a new file may use), or nullopt
  // when it cannot be told. By default the sum of free_space()'s ranges.
  virtual std::optional<uint64_t> free_bytes_at(const std::string& path);
};

using GuestFsPtr = std::unique_ptr<GuestFs>;

// A guest tree in a host folder: tests, a guest mounted by `vdkit mount`, and
// the kernel-mount backend's mount point. Guest-absolute symbolic links
// resolve against `root`, never the host's /.
Result<GuestFsPtr> open_folder_guest(const std::string& root, bool writable);

// Several file systems shown as one guest tree: each path goes to the file
// system mounted at its longest matching mount point ("/" must be present).
class MountedGuestFs : public GuestFs {
 public:
  // Takes ownership; mount points are guest paths without a trailing slash ("/", "/boot").
  void add(const std::string& mount_point, GuestFsPtr fs);
  bool has(const std::string& mount_point) const { return mounts_.count(mount_point) != 0; }
  Result<std::string> read_file(const std::string& path, size_t max_bytes = kMaxGuestFileBytes) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  std::vector<std::string> list_dir(const std::string& path) override;
  Status write_file(const std::string& path, std::string_view data) override;
  bool writable() const override;
  std::string describe() const override;
  std::optional<uint64_t> free_bytes_at(const std::string& path) override;

 private:
  // The file system holding path and the path inside it.
  std::pair<GuestFs*, std::string> route(const std::string& path) const;
  std::map<std::string, GuestFsPtr> mounts_;
};

// Normalises a guest path: one leading slash, no "." or empty parts, ".." resolved (never above /).
std::string normalize_guest_path(std::string_view path);
// "/etc/fstab" -> "/etc"; "/" -> "/".
std::string guest_dirname(const std::string& path);
// Joins a folder and a name.
std::string guest_join(const std::string& dir, const std::string& name);

}  // namespace vdkit::guestfs
