// Ext2Volume's life: open (refusing what must not be written), close (one last all-or-nothing flush), open files.
#include "guestfs/ext2/ext2_volume.h"

#include <ctime>

#include "guestfs/ext2/consistency.h"
#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/io_manager.h"

namespace vdkit {

Result<std::unique_ptr<Ext2Volume>> Ext2Volume::Open(std::shared_ptr<BlockDevice> dev, bool writable, bool force) {
  if (writable && !dev->caps().writable)
    return Status::Error(EROFS, "cannot open the file system for writing: the device is read-only");
  static std::once_flag errors_once;
  std::call_once(errors_once, [] { initialize_ext2_error_table(); });
  // Writes go through an UndoDevice, so WriteFile can put every block back when a write fails part way.
  std::shared_ptr<UndoDevice> undo = writable ? std::make_shared<UndoDevice>(dev) : nullptr;
  if (undo) dev = undo;
  auto io_errors = std::make_shared<ext2::DeviceErrors>();
  std::string name = ext2::register_device(dev, io_errors);
  auto unregister = [&name] { ext2::unregister_device(name); };
  ext2_filsys fs = nullptr;
  int flags = EXT2_FLAG_64BITS | EXT2_FLAG_THREADS | (writable ? EXT2_FLAG_RW : 0);
  Status opened = ext2::open_registered(name, flags, io_errors.get(), &fs);
  if (!opened.ok()) {
    unregister();
    return opened;
  }
  std::unique_ptr<Ext2Volume> vol(new Ext2Volume(dev, fs, writable, name));
  vol->undo_ = undo;
  vol->io_errors_ = io_errors;
  // A refused open must not write: drop the file system without Close()'s flush, and forget the device name.
  auto refuse = [&](Status st) -> Status {
    vol->fs_ = nullptr;
    ext2fs_free(fs);
    unregister();
    return st;
  };
  if (writable) {
    if (ext2fs_has_feature_journal_needs_recovery(fs->super))
      return refuse(Status::Error(EROFS,
                                  "the ext4 journal needs recovery (the guest was not shut down cleanly); run e2fsck "
                                  "on a copy, or mount read-only"));
    errcode_t err = ext2fs_read_bitmaps(fs);
    if (err) return refuse(ext2_status(fs, err, "reading the block and inode bitmaps"));
    if (!force) {
      Status st = ext2::check_before_write(fs);
      if (!st.ok()) return refuse(st);
    }
    vol->force_ = force;
    // Mark the file system in use until Close(), as the kernel does, so a
    // crash leaves it flagged for e2fsck.
    fs->super->s_mnt_count++;
    fs->super->s_mtime = static_cast<uint32_t>(time(nullptr));
    fs->super->s_state &= ~EXT2_VALID_FS;
    ext2fs_mark_super_dirty(fs);
    undo->begin();
    err = ext2fs_flush2(fs, 0);
    Status st = err ? ext2::with_device_error(ext2_status(fs, err, "writing the superblock"), *undo)
                    : undo->first_error();
    if (!st.ok()) {
      Status rb = undo->rollback();
      if (!rb.ok())
        return refuse(Status::Error(st.code(), st.message() + "; putting the old superblock back also failed (" +
                                                   rb.message() + "): check the file system with e2fsck -f"));
      return refuse(st);
    }
    undo->commit();
  }
  return vol;
}

Ext2Volume::~Ext2Volume() { (void)Close(); }

Status Ext2Volume::Close() {
  std::lock_guard<std::mutex> g(mu_);
  if (!fs_) return Status::Ok();
  Status st;
  if (writable_ && !damaged_) {
    // One last transaction: if writing the superblock and group descriptors fails part way, the blocks go back
    // to the last flushed state, which is consistent and still marked in use (e2fsck checks it at boot).
    // Changes made outside WriteFile (the FUSE view) write inodes and folders straight through and keep bitmaps in
    // memory; if those are still unflushed, rolling back cannot give a consistent state, only an unchanged one.
    const bool was_clean_in_memory = !(fs_->flags & (EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY));
    if (undo_) undo_->begin();
    // Inodes unlinked while open are freed now that nothing holds them.
    for (auto& [ino, n] : open_count_) {
      ext2_inode_large in;
      if (ReadInodeLocked(ino, in).ok() && in.i_links_count == 0) (void)FreeInodeLocked(ino);
    }
    fs_->super->s_state |= EXT2_VALID_FS;
    ext2fs_mark_super_dirty(fs_);
    st = FlushLocked();
    if (st.ok() && undo_) st = undo_->first_error();
    if (!st.ok() && undo_) st = ext2::with_device_error(st, *undo_);
    if (!st.ok() && undo_) {
      Status rb = undo_->rollback();
      st = Status::Error(st.code(), "closing the file system: " + st.message() +
                                        (!rb.ok() ? "; putting the blocks back also failed (" + rb.message() +
                                                        "): check the file system with e2fsck -f"
                                         : was_clean_in_memory
                                             ? " (rolled back to the last consistent state, marked in use)"
                                             : " (rolled back, but earlier changes' block and inode bitmaps were "
                                               "never written: check the file system with e2fsck -f)"));
    } else if (undo_) {
      undo_->commit();
    }
  } else if (writable_ && damaged_) {
    // The superblock stays marked in use (not clean), and the caller must hear that this file system needs a check.
    st = Status::Error(EIO, "closing the file system: an earlier write error could not be fully undone, so it is "
                            "left marked in use; check it with e2fsck -f");
  }
  open_count_.clear();
  if (st.ok() && writable_ && !damaged_) {
    errcode_t err = ext2fs_close_free(&fs_);  // nothing dirty is left; this stops MMP and frees
    if (err) st = ext2_status(io_errors_.get(), err, "closing the file system");
  } else {
    ext2fs_free(fs_);  // never write again after a failure
  }
  fs_ = nullptr;
  ext2::unregister_device(channel_name_);
  return st;
}

Status Ext2Volume::CheckWritable() const {
  if (!writable_) return Status::Error(EROFS, "the file system is mounted read-only");
  if (damaged_)
    return Status::Error(EIO, "an earlier change could not be fully undone after a write error; no further writes");
  return Status::Ok();
}

Status Ext2Volume::FlushLocked() {
  if (!writable_) return Status::Ok();
  errcode_t err = ext2fs_flush2(fs_, 0);
  if (err) return ext2_status(fs_, err, "writing file system metadata");
  return dev_->flush();
}

void Ext2Volume::AcquireLocked(ext2_ino_t ino) { open_count_[ino]++; }

Status Ext2Volume::ReleaseLocked(ext2_ino_t ino) {
  auto it = open_count_.find(ino);
  if (it == open_count_.end()) return Status::Ok();
  if (--it->second > 0) return Status::Ok();
  open_count_.erase(it);
  if (!writable_) return Status::Ok();
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (in.i_links_count == 0 && in.i_dtime == 0) return FreeInodeLocked(ino);
  return Status::Ok();
}

}  // namespace vdkit
