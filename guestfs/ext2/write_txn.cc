// Ext2Volume::WriteFile's transaction: new inode then rename, changed blocks in an undo log, rolled back on failure.
#include "guestfs/ext2/consistency.h"
#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"
#include "guestfs/ext2/io_manager.h"

namespace vdkit {

Status Ext2Volume::WriteFile(const std::string& path_in, std::string_view data, uint32_t mode_if_new) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  // Start from a file system that is whole on the device, so rolling back lands on a consistent state.
  if (fs_->flags & (EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY)) VDKIT_RETURN_IF_ERROR(FlushLocked());
  if (undo_) undo_->begin();
  Status st = WriteFileLocked(path_in, data, mode_if_new);
  if (st.ok()) st = FlushLocked();
  if (st.ok() && undo_) st = undo_->first_error();
  if (!st.ok())
    return undo_ ? RollBackLocked(ext2::with_device_error(st, *undo_).Context("writing '" + path_in + "'")) : st;
  if (undo_) undo_->commit();
  return Status::Ok();
}

Status Ext2Volume::RollBackLocked(const Status& cause) {
  Status rb = undo_->rollback();
  if (!rb.ok()) {
    damaged_ = true;
    return Status::Error(cause.code(), cause.message() + "; putting the changed blocks back also failed (" +
                                           rb.message() + "), so the file system may be inconsistent: check it "
                                                          "with e2fsck -f before using it");
  }
  // libext2fs's in-memory state (bitmaps, group descriptors, inode cache) describes the abandoned change: drop it
  // without writing and read the file system again from the restored blocks.
  rb = ReopenLocked();
  if (!rb.ok()) {
    // The blocks are back, but this volume cannot trust its in-memory state any more: no further writes (and
    // Close() will not write a clean superblock over it).
    damaged_ = true;
    return Status::Error(cause.code(), cause.message() + " (the changed blocks were put back, but " + rb.message() +
                                           "; no further changes to this file system)");
  }
  return Status::Error(cause.code(), cause.message() + " (rolled back: the file system is as it was before this file)");
}

// Opens the file system again before dropping the old state, so fs_ is never null: when the reopen fails, the old
// (stale but valid) ext2_filsys stays for reads, and the caller marks the volume damaged.
Status Ext2Volume::ReopenLocked() {
  int flags = EXT2_FLAG_64BITS | EXT2_FLAG_THREADS | (writable_ ? EXT2_FLAG_RW : 0);
  ext2_filsys fs = nullptr;
  Status opened = ext2::open_registered(channel_name_, flags, io_errors_.get(), &fs);
  if (!opened.ok()) return opened.Context("reopening the file system");
  if (writable_) {
    errcode_t err = ext2fs_read_bitmaps(fs);
    if (err) {
      Status st = ext2_status(fs, err, "reading the block and inode bitmaps again");
      ext2fs_free(fs);
      return st;
    }
  }
  if (fs_) ext2fs_free(fs_);
  fs_ = fs;
  return Status::Ok();
}

Status Ext2Volume::WriteFileLocked(const std::string& path_in, std::string_view data, uint32_t mode_if_new) {
  std::string path = path_in;
  // Follow a final symlink (bounded, like the kernel's 40) so editing /etc/resolv.conf edits its target.
  for (int hops = 0;; ++hops) {
    if (hops > 40) return Status::Error(ELOOP, "too many symlinks at '" + path_in + "'");
    auto ino = ResolveLocked(path, false);
    if (!ino.ok()) break;
    VDKIT_ASSIGN_OR_RETURN(Ext2Stat st, StatLocked(*ino));
    if (!LINUX_S_ISLNK(st.mode)) break;
    VDKIT_ASSIGN_OR_RETURN(std::string target, ReadLinkLocked(*ino));
    if (target[0] != '/') path = path.substr(0, path.rfind('/') + 1) + target;
    else path = target;
  }
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  const ext2_ino_t dir = parent.first;
  const std::string name = parent.second;
  // Every folder from the root to the one edited must be sound before an entry is added to it.
  if (!force_) {
    auto check = [&](const std::string& folder) -> Status {
      VDKIT_ASSIGN_OR_RETURN(ext2_ino_t d, ResolveLocked(folder, true));
      return ext2::check_directory(fs_, d, folder);
    };
    VDKIT_RETURN_IF_ERROR(check("/"));
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
      VDKIT_RETURN_IF_ERROR(check(path.substr(0, slash)));
  }
  uint32_t mode = LINUX_S_IFREG | (mode_if_new & 07777), uid = 0, gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  auto old = LookupLocked(dir, name);
  if (old.ok()) {
    VDKIT_ASSIGN_OR_RETURN(Ext2Stat st, StatLocked(*old));
    if (!LINUX_S_ISREG(st.mode)) return Status::Error(EISDIR, "'" + path + "' is not a regular file");
    mode = st.mode;
    uid = st.uid;
    gid = st.gid;
    auto names = ListXattrsLocked(*old);
    if (names.ok()) {
      for (const auto& n : *names) {
        VDKIT_ASSIGN_OR_RETURN(std::string v, GetXattrLocked(*old, n));
        xattrs.emplace_back(n, std::move(v));
      }
    }
  }
  std::string tmp;
  for (int i = 0;; ++i) {
    tmp = "." + name.substr(0, 200) + ".vdkit-new" + std::to_string(i);
    if (!LookupLocked(dir, tmp).ok()) break;
    if (i > 1000) return Status::Error(EEXIST, "no free temporary name beside '" + path + "'");
  }
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, CreateLocked(dir, tmp, mode, uid, gid));
  // Without an undo log (never for a writable volume today) the temporary file is unlinked by hand.
  auto undo = [&](Status st) {
    if (!undo_) (void)UnlinkLocked(dir, tmp);
    return st;
  };
  if (!data.empty()) {
    auto n = WriteLocked(ino, 0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    if (!n.ok()) return undo(n.status());
  }
  for (const auto& [n, v] : xattrs) {
    Status st = SetXattrLocked(ino, n, v);
    if (!st.ok()) return undo(st);
  }
  Status st = RenameLocked(dir, tmp, dir, name);
  if (!st.ok()) return undo(st);
  return Status::Ok();
}

}  // namespace vdkit
