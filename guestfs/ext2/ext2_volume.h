// Ext2Volume: an ext2/3/4 file system opened through libext2fs over a vdkit BlockDevice, with a small path API.
//
// The implementation is split by responsibility: volume.cc (open/close), inode.cc, names.cc, dirs.cc, data.cc,
// xattrs.cc, paths.cc (the path API) and write_txn.cc (WriteFile's all-or-nothing transaction); the io_manager over
// the BlockDevice is io_manager.cc, and errcode_t/errno/Status mapping errors.cc.
#pragma once

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/byte_ranges.h"
#include "blockcore/base/status.h"
#include "blockcore/layers/undo_device.h"
#include "guestfs/ext2/errors.h"

namespace vdkit {

// What stat(2) would say about an inode, as the guest has it.
struct Ext2Stat {
  ext2_ino_t ino = 0;
  uint32_t mode = 0;          // type and permission bits (S_IFREG | 0644, ...)
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;  // 32-bit ids (low and high halves joined)
  uint64_t size = 0;
  uint64_t blocks512 = 0;     // st_blocks
  uint64_t rdev = 0;          // device nodes: makedev(major, minor)
  uint32_t generation = 0;
  struct timespec atime{}, mtime{}, ctime{};
};

struct Ext2DirEntry {
  std::string name;
  ext2_ino_t ino = 0;
  uint32_t type = 0;  // DT_REG, DT_DIR, DT_LNK, ... (DT_UNKNOWN when the fs does not record it)
};

// One open ext2/3/4 file system.
//
// Threading: libext2fs is not thread-safe. Every method whose comment says
// "caller holds mutex()" must be called with mutex() locked; the path helpers
// (ReadFile, WriteFile, Mkdir, ...) lock it themselves and must be called
// without it. Lock order: mutex() is the only lock, and it is never held while
// calling out of this class except into libext2fs and the BlockDevice.
//
// Writes go straight to the BlockDevice (no write-back cache in the I/O
// manager), so data reaches the device as soon as a call returns; Close()
// writes the superblock and group descriptors and marks the file system clean.
// A writable volume's device is wrapped in an UndoDevice so WriteFile and
// Close can undo a change that a failing write interrupted.
class Ext2Volume {
 public:
  // Opens the ext2/3/4 file system on dev (a partition view or a whole disk).
  // writable needs dev->caps().writable. Refuses file systems with
  // incompatible features libext2fs does not know, and (for writing) a
  // journal that needs recovery. For writing it also runs the checks of
  // consistency.h (superblock state, group descriptors, bitmaps against free
  // counts) and, before each WriteFile, checks the folders on its path; a
  // problem refuses the open or the write unless `force`.
  static Result<std::unique_ptr<Ext2Volume>> Open(std::shared_ptr<BlockDevice> dev, bool writable,
                                                  bool force = false);
  ~Ext2Volume();  // Close() if not yet closed; errors are lost, so call Close().
  Ext2Volume(const Ext2Volume&) = delete;
  Ext2Volume& operator=(const Ext2Volume&) = delete;

  ext2_filsys fs() const { return fs_; }
  std::mutex& mutex() { return mu_; }
  BlockDevice& device() { return *dev_; }
  bool writable() const { return writable_; }
  uint32_t block_size() const { return fs_->blocksize; }

  // Flushes metadata, marks the file system clean and closes it. Idempotent.
  Status Close();

  // ---- path helpers (lock the mutex themselves). Paths are absolute inside
  // the guest ("/etc/fstab"); the last component is not followed when it is a
  // symlink, earlier ones are (relative to the guest root, never the host).
  Result<Ext2Stat> Stat(const std::string& path);   // follows a final symlink
  Result<Ext2Stat> Lstat(const std::string& path);  // does not
  bool Exists(const std::string& path);             // lstat succeeds
  Result<std::string> ReadFile(const std::string& path);  // follows a final symlink
  // Replaces (or creates) a regular file with `data`: the content goes to a new
  // inode in the same folder, then one directory entry is switched to it, so a
  // reader sees the old file or the new one, never a mix. An existing file's
  // mode, owner and extended attributes carry over; a new file gets
  // `mode_if_new` and root ownership. Follows a final symlink to its target.
  // All or nothing on the device too: the call flushes before and after, and
  // if any write fails in between (EIO, ENOSPC, a torn write) every block it
  // changed is put back and the file system reloaded, so the disk holds the
  // old file and consistent metadata (e2fsck -fn clean).
  Status WriteFile(const std::string& path, std::string_view data, uint32_t mode_if_new = 0644);
  Status Mkdir(const std::string& path, uint32_t mode = 0755, uint32_t uid = 0, uint32_t gid = 0);
  Status Unlink(const std::string& path);  // files, symlinks, device nodes
  Status Rmdir(const std::string& path);   // empty folders only (ENOTEMPTY)
  Status Symlink(const std::string& target, const std::string& linkpath);
  Status Rename(const std::string& from, const std::string& to);
  Status Chmod(const std::string& path, uint32_t mode);  // permission bits only
  Status Chown(const std::string& path, uint32_t uid, uint32_t gid);
  Result<std::vector<Ext2DirEntry>> ReadDir(const std::string& path);  // without "." and ".."
  Result<std::string> ReadLink(const std::string& path);
  Result<std::vector<std::string>> ListXattrs(const std::string& path);
  Result<std::string> GetXattr(const std::string& path, const std::string& name);  // ENODATA if absent
  Status SetXattr(const std::string& path, const std::string& name, std::string_view value);
  Status RemoveXattr(const std::string& path, const std::string& name);

  // ---- inode-level operations (caller holds mutex()). Names are single path
  // components. These are what the FUSE view uses.
  Result<ext2_ino_t> ResolveLocked(const std::string& path, bool follow_last);
  Result<ext2_ino_t> LookupLocked(ext2_ino_t dir, const std::string& name);
  Result<Ext2Stat> StatLocked(ext2_ino_t ino);
  Status ReadInodeLocked(ext2_ino_t ino, ext2_inode_large& inode);
  Status WriteInodeLocked(ext2_ino_t ino, ext2_inode_large& inode);
  Result<std::vector<Ext2DirEntry>> ReadDirLocked(ext2_ino_t dir);
  Result<std::string> ReadLinkLocked(ext2_ino_t ino);
  // Creates an inode of `mode` (S_IFREG, S_IFDIR, S_IFLNK via SymlinkLocked,
  // S_IFCHR/S_IFBLK/S_IFIFO/S_IFSOCK with rdev) linked as dir/name. EEXIST if taken.
  Result<ext2_ino_t> CreateLocked(ext2_ino_t dir, const std::string& name, uint32_t mode, uint32_t uid,
                                  uint32_t gid, uint64_t rdev = 0);
  Result<ext2_ino_t> SymlinkLocked(ext2_ino_t dir, const std::string& name, const std::string& target,
                                   uint32_t uid, uint32_t gid);
  Status LinkLocked(ext2_ino_t ino, ext2_ino_t dir, const std::string& name);  // hard link
  Status UnlinkLocked(ext2_ino_t dir, const std::string& name);
  Status RmdirLocked(ext2_ino_t dir, const std::string& name);
  // rename(2) semantics: replaces an existing target (an empty folder for a
  // folder) by switching its directory entry, so the target never disappears.
  Status RenameLocked(ext2_ino_t from_dir, const std::string& from, ext2_ino_t to_dir, const std::string& to,
                      bool noreplace = false);
  // Reads up to buf.size() bytes at offset; returns how many (short at EOF).
  // Large reads of extent-mapped files map the range once and read the device
  // in long runs; on a read-only volume `lock` is released meanwhile (pass a
  // lock that does not own the mutex to keep everything under the caller's lock).
  Result<size_t> ReadLocked(std::unique_lock<std::mutex>& lock, ext2_ino_t ino, uint64_t offset,
                            std::span<uint8_t> buf);
  Result<size_t> WriteLocked(ext2_ino_t ino, uint64_t offset, std::span<const uint8_t> buf);
  Status TruncateLocked(ext2_ino_t ino, uint64_t size);
  // Sets what is given; times are in the guest's clock.
  Status SetAttrLocked(ext2_ino_t ino, std::optional<uint32_t> mode, std::optional<uint32_t> uid,
                       std::optional<uint32_t> gid, std::optional<struct timespec> atime,
                       std::optional<struct timespec> mtime);
  Result<std::vector<std::string>> ListXattrsLocked(ext2_ino_t ino);
  Result<std::string> GetXattrLocked(ext2_ino_t ino, const std::string& name);
  Status SetXattrLocked(ext2_ino_t ino, const std::string& name, std::string_view value, int flags = 0);
  Status RemoveXattrLocked(ext2_ino_t ino, const std::string& name);
  Status FlushLocked();  // metadata to the device, then BlockDevice::flush()

  // The blocks the block bitmap marks free, as {offset, length} byte ranges of the volume's device, merged and
  // sorted; returns how many blocks that is. Reads the bitmap if this volume has not yet (a read-only one); a
  // writable one answers from its bitmap in memory, changes not yet flushed included. Blocks before
  // s_first_data_block (the 1 KiB boot block of a 1 KiB-block file system) and past the last block are not in the
  // bitmap and never reported. Locks the mutex itself.
  Result<uint64_t> UnusedRanges(ByteRanges& out);

  // Open-file bookkeeping, so an unlinked file keeps its data while open
  // (caller holds mutex()). The last Release of an inode with no links frees it.
  void AcquireLocked(ext2_ino_t ino);
  Status ReleaseLocked(ext2_ino_t ino);

 private:
  Ext2Volume(std::shared_ptr<BlockDevice> dev, ext2_filsys fs, bool writable, std::string channel_name)
      : dev_(std::move(dev)), fs_(fs), writable_(writable), channel_name_(std::move(channel_name)) {}
  Status CheckWritable() const;
  Status LinkEntryLocked(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, uint32_t mode);
  Status DropLinkLocked(ext2_ino_t ino);  // links_count - 1, frees when unused
  Status FreeInodeLocked(ext2_ino_t ino);
  Result<std::pair<ext2_ino_t, std::string>> ParentOfLocked(const std::string& path);
  Status TouchLocked(ext2_ino_t ino, bool mtime, bool ctime);

  // WriteFile's transaction: flush, record before-images, edit, flush; on failure put the blocks back and reload.
  Status WriteFileLocked(const std::string& path_in, std::string_view data, uint32_t mode_if_new);
  Status RollBackLocked(const Status& cause);
  Status ReopenLocked();

  std::shared_ptr<BlockDevice> dev_;  // for a writable volume, undo_
  std::shared_ptr<UndoDevice> undo_;
  ext2_filsys fs_;
  bool writable_;
  bool damaged_ = false;  // a rollback failed: no more writes
  bool force_ = false;    // write even where the consistency checks object
  std::string channel_name_;
  std::shared_ptr<ext2::DeviceErrors> io_errors_;  // the io_manager's record of the device's last failure
  std::mutex mu_;
  std::map<ext2_ino_t, int> open_count_;  // inodes held open by callers
};

}  // namespace vdkit
