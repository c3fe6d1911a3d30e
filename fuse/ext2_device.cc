// A libext2fs io_manager over a vdkit BlockDevice, and Ext2Volume: open, read and edit ext2/3/4 file systems.
#include "fuse/ext2_device.h"

#include <dirent.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>

#include "blockcore/base/checked.h"

namespace vdkit {

// ---------------------------------------------------------------- errors

int ext2_errno(errcode_t err) {
  if (err == 0) return 0;
  if (err > 0 && err < 256) return static_cast<int>(err);  // a plain errno passed through libext2fs
  switch (err) {
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_DIR_NO_SPACE:
    case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
    case EXT2_ET_EA_NO_SPACE:
    case EXT2_ET_INLINE_DATA_NO_SPACE: return ENOSPC;
    case EXT2_ET_RO_FILSYS:
    case EXT2_ET_FILE_RO: return EROFS;
    case EXT2_ET_FILE_NOT_FOUND: return ENOENT;
    case EXT2_ET_NO_DIRECTORY: return ENOTDIR;
    case EXT2_ET_DIR_EXISTS: return EEXIST;
    case EXT2_ET_FILE_TOO_BIG: return EFBIG;
    case EXT2_ET_EA_KEY_NOT_FOUND: return ENODATA;
    case EXT2_ET_EA_BAD_NAME_LEN: return ERANGE;
    case EXT2_ET_EA_BAD_VALUE_SIZE: return E2BIG;
    case EXT2_ET_MISSING_EA_FEATURE: return ENOTSUP;
    case EXT2_ET_NO_MEMORY: return ENOMEM;
    case EXT2_ET_SYMLINK_LOOP: return ELOOP;
    case EXT2_ET_UNIMPLEMENTED: return ENOTSUP;
    default: return EIO;
  }
}

Status ext2_status(errcode_t err, const std::string& what) {
  if (err == 0) return Status::Ok();
  return Status::Error(ext2_errno(err), what + ": " + error_message(err));
}

namespace {

// ---------------------------------------------------------------- io_manager

// libext2fs opens devices by name; names "vdkit-dev:<n>" are looked up here.
std::mutex g_registry_mu;
std::map<std::string, std::shared_ptr<BlockDevice>>& registry() {
  static std::map<std::string, std::shared_ptr<BlockDevice>> r;
  return r;
}

struct ChannelData {
  std::shared_ptr<BlockDevice> dev;
  bool writable = false;
};

BlockDevice* dev_of(io_channel ch) { return static_cast<ChannelData*>(ch->private_data)->dev.get(); }

// Byte range of `count` blocks at `block` (count < 0 means -count bytes, as libext2fs defines it).
bool byte_range(io_channel ch, unsigned long long block, int count, uint64_t& off, uint64_t& len) {
  if (count < 0) len = static_cast<uint64_t>(-static_cast<int64_t>(count));
  else len = static_cast<uint64_t>(count) * static_cast<uint64_t>(ch->block_size);
  auto o = checked_mul(block, static_cast<uint64_t>(ch->block_size));
  if (!o) return false;
  off = *o;
  return true;
}

errcode_t status_to_errcode(const Status& st) { return st.code() == EROFS ? EXT2_ET_RO_FILSYS : EIO; }

errcode_t vd_open(const char* name, int flags, io_channel* channel);

errcode_t vd_close(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  delete static_cast<ChannelData*>(ch->private_data);
  ext2fs_free_mem(&ch->name);
  ext2fs_free_mem(&ch);
  return 0;
}

errcode_t vd_set_blksize(io_channel ch, int blksize) {
  if (blksize <= 0 || blksize > (1 << 16)) return EXT2_ET_INVALID_ARGUMENT;
  ch->block_size = blksize;
  return 0;
}

errcode_t vd_read_blk64(io_channel ch, unsigned long long block, int count, void* data) {
  uint64_t off, len;
  BlockDevice* dev = dev_of(ch);
  if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) {
    // Reading past the end of the device: the file system claims blocks the disk does not have.
    return EXT2_ET_SHORT_READ;
  }
  Status st = dev->read(off, std::span<uint8_t>(static_cast<uint8_t*>(data), len));
  if (!st.ok()) return status_to_errcode(st);
  return 0;
}

errcode_t vd_read_blk(io_channel ch, unsigned long block, int count, void* data) {
  return vd_read_blk64(ch, block, count, data);
}

errcode_t vd_write_blk64(io_channel ch, unsigned long long block, int count, const void* data) {
  uint64_t off, len;
  BlockDevice* dev = dev_of(ch);
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return EXT2_ET_RO_FILSYS;
  if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) return EXT2_ET_SHORT_WRITE;
  Status st = dev->write(off, std::span<const uint8_t>(static_cast<const uint8_t*>(data), len));
  return st.ok() ? 0 : status_to_errcode(st);
}

errcode_t vd_write_blk(io_channel ch, unsigned long block, int count, const void* data) {
  return vd_write_blk64(ch, block, count, data);
}

errcode_t vd_write_byte(io_channel ch, unsigned long offset, int count, const void* data) {
  BlockDevice* dev = dev_of(ch);
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return EXT2_ET_RO_FILSYS;
  if (count < 0 || !range_within(offset, static_cast<uint64_t>(count), dev->size())) return EXT2_ET_SHORT_WRITE;
  Status st = dev->write(offset, std::span<const uint8_t>(static_cast<const uint8_t*>(data), count));
  return st.ok() ? 0 : status_to_errcode(st);
}

errcode_t vd_flush(io_channel ch) {
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return 0;
  Status st = dev_of(ch)->flush();
  return st.ok() ? 0 : EIO;
}

errcode_t vd_set_option(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

errcode_t vd_discard(io_channel ch, unsigned long long block, unsigned long long count) {
  BlockDevice* dev = dev_of(ch);
  if (!dev->caps().can_trim) return EXT2_ET_UNIMPLEMENTED;
  auto off = checked_mul(block, ch->block_size);
  auto len = checked_mul(count, ch->block_size);
  if (!off || !len || !range_within(*off, *len, dev->size())) return EXT2_ET_INVALID_ARGUMENT;
  return dev->trim(*off, *len).ok() ? 0 : EIO;
}

errcode_t vd_zeroout(io_channel ch, unsigned long long block, unsigned long long count) {
  BlockDevice* dev = dev_of(ch);
  if (!dev->caps().can_zero) return EXT2_ET_UNIMPLEMENTED;
  auto off = checked_mul(block, ch->block_size);
  auto len = checked_mul(count, ch->block_size);
  if (!off || !len || !range_within(*off, *len, dev->size())) return EXT2_ET_INVALID_ARGUMENT;
  return dev->zero(*off, *len).ok() ? 0 : EIO;
}

errcode_t vd_cache_readahead(io_channel, unsigned long long, unsigned long long) { return 0; }

struct struct_io_manager g_vdkit_io_manager = [] {
  struct struct_io_manager m;
  std::memset(&m, 0, sizeof m);
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "vdkit BlockDevice I/O manager";
  m.open = vd_open;
  m.close = vd_close;
  m.set_blksize = vd_set_blksize;
  m.read_blk = vd_read_blk;
  m.write_blk = vd_write_blk;
  m.flush = vd_flush;
  m.write_byte = vd_write_byte;
  m.set_option = vd_set_option;
  m.read_blk64 = vd_read_blk64;
  m.write_blk64 = vd_write_blk64;
  m.discard = vd_discard;
  m.cache_readahead = vd_cache_readahead;
  m.zeroout = vd_zeroout;
  return m;
}();

errcode_t vd_open(const char* name, int flags, io_channel* channel) {
  std::shared_ptr<BlockDevice> dev;
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    auto it = registry().find(name ? name : "");
    if (it == registry().end()) return EXT2_ET_BAD_DEVICE_NAME;
    dev = it->second;
  }
  if ((flags & IO_FLAG_RW) && !dev->caps().writable) return EXT2_ET_RO_FILSYS;
  io_channel ch = nullptr;
  errcode_t err = ext2fs_get_mem(sizeof(struct struct_io_channel), &ch);
  if (err) return err;
  std::memset(ch, 0, sizeof *ch);
  err = ext2fs_get_mem(std::strlen(name) + 1, &ch->name);
  if (err) {
    ext2fs_free_mem(&ch);
    return err;
  }
  std::strcpy(ch->name, name);
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = &g_vdkit_io_manager;
  ch->block_size = 1024;
  ch->refcount = 1;
  ch->private_data = new ChannelData{std::move(dev), (flags & IO_FLAG_RW) != 0};
  *channel = ch;
  return 0;
}

// ---------------------------------------------------------------- inode helpers

bool has_extra(const ext2_filsys fs, const ext2_inode_large& in, size_t field_end) {
  return EXT2_INODE_SIZE(fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
         static_cast<size_t>(EXT2_GOOD_OLD_INODE_SIZE + in.i_extra_isize) >= field_end;
}

#define VD_FIELD_END(f) (offsetof(ext2_inode_large, f) + sizeof(ext2_inode_large::f))

struct timespec decode_time(const ext2_filsys fs, const ext2_inode_large& in, uint32_t lo, uint32_t extra,
                            size_t extra_end) {
  struct timespec ts{};
  ts.tv_sec = static_cast<int32_t>(lo);
  if (has_extra(fs, in, extra_end)) {
    ts.tv_sec += static_cast<int64_t>(extra & 3) << 32;
    ts.tv_nsec = extra >> 2;
    if (ts.tv_nsec >= 1000000000) ts.tv_nsec = 0;
  }
  return ts;
}

void encode_time(const ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts, __u32& lo, __u32& extra,
                 size_t extra_end) {
  lo = static_cast<uint32_t>(ts.tv_sec);
  if (has_extra(fs, in, extra_end)) {
    uint32_t epoch = static_cast<uint32_t>((ts.tv_sec - static_cast<int32_t>(lo)) >> 32) & 3;
    extra = static_cast<uint32_t>(ts.tv_nsec << 2) | epoch;
  }
}

struct timespec now_ts() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

void set_ctime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts) {
  encode_time(fs, in, ts, in.i_ctime, in.i_ctime_extra, VD_FIELD_END(i_ctime_extra));
}
void set_mtime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts) {
  encode_time(fs, in, ts, in.i_mtime, in.i_mtime_extra, VD_FIELD_END(i_mtime_extra));
}
void set_atime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts) {
  encode_time(fs, in, ts, in.i_atime, in.i_atime_extra, VD_FIELD_END(i_atime_extra));
}

uint64_t decode_rdev(const ext2_inode_large& in) {
  if (in.i_block[0]) return makedev((in.i_block[0] >> 8) & 0xff, in.i_block[0] & 0xff);
  uint32_t d = in.i_block[1];
  return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

void encode_rdev(ext2_inode_large& in, uint64_t rdev) {
  uint32_t maj = major(rdev), min = minor(rdev);
  if (maj < 256 && min < 256) {
    in.i_block[0] = maj * 256 + min;
    in.i_block[1] = 0;
  } else {
    in.i_block[0] = 0;
    in.i_block[1] = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
  }
}

int ext2_file_type(uint32_t mode) {
  if (LINUX_S_ISREG(mode)) return EXT2_FT_REG_FILE;
  if (LINUX_S_ISDIR(mode)) return EXT2_FT_DIR;
  if (LINUX_S_ISCHR(mode)) return EXT2_FT_CHRDEV;
  if (LINUX_S_ISBLK(mode)) return EXT2_FT_BLKDEV;
  if (LINUX_S_ISLNK(mode)) return EXT2_FT_SYMLINK;
  if (LINUX_S_ISFIFO(mode)) return EXT2_FT_FIFO;
  if (LINUX_S_ISSOCK(mode)) return EXT2_FT_SOCK;
  return EXT2_FT_UNKNOWN;
}

uint32_t dt_of_ft(int ft) {
  switch (ft) {
    case EXT2_FT_REG_FILE: return DT_REG;
    case EXT2_FT_DIR: return DT_DIR;
    case EXT2_FT_CHRDEV: return DT_CHR;
    case EXT2_FT_BLKDEV: return DT_BLK;
    case EXT2_FT_SYMLINK: return DT_LNK;
    case EXT2_FT_FIFO: return DT_FIFO;
    case EXT2_FT_SOCK: return DT_SOCK;
    default: return DT_UNKNOWN;
  }
}

Status check_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return Status::Invalid("bad file name '" + name + "'");
  if (name.find('/') != std::string::npos) return Status::Invalid("file name '" + name + "' contains '/'");
  if (name.size() > EXT2_NAME_LEN) return Status::Error(ENAMETOOLONG, "file name longer than 255 bytes");
  return Status::Ok();
}

std::atomic<uint64_t> g_next_channel{1};

// libext2fs reports some write failures in its own words ("Can't write a block bitmap"); add the device's error,
// which names the file, offset and errno.
Status with_device_error(const Status& st, const UndoDevice& undo) {
  Status dev = undo.first_error();
  if (st.ok() || dev.ok() || st.message().find(dev.message()) != std::string::npos) return st;
  return Status::Error(dev.code(), st.message() + " (" + dev.message() + ")");
}

}  // namespace

// ---------------------------------------------------------------- open/close

Result<std::unique_ptr<Ext2Volume>> Ext2Volume::Open(std::shared_ptr<BlockDevice> dev, bool writable) {
  if (writable && !dev->caps().writable)
    return Status::Error(EROFS, "cannot open the file system for writing: the device is read-only");
  static std::once_flag errors_once;
  std::call_once(errors_once, [] { initialize_ext2_error_table(); });
  std::string name = "vdkit-dev:" + std::to_string(g_next_channel++);
  // Writes go through an UndoDevice, so WriteFile can put every block back when a write fails part way.
  std::shared_ptr<UndoDevice> undo = writable ? std::make_shared<UndoDevice>(dev) : nullptr;
  if (undo) dev = undo;
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    registry()[name] = dev;
  }
  auto unregister = [&name] {
    std::lock_guard<std::mutex> g(g_registry_mu);
    registry().erase(name);
  };
  ext2_filsys fs = nullptr;
  int flags = EXT2_FLAG_64BITS | EXT2_FLAG_THREADS | (writable ? EXT2_FLAG_RW : 0);
  errcode_t err = ext2fs_open2(name.c_str(), nullptr, flags, 0, 0, &g_vdkit_io_manager, &fs);
  if (err) {
    unregister();
    if (err == EXT2_ET_BAD_MAGIC) return Status::Invalid("no ext2/3/4 superblock (magic 0xEF53 at byte 1080)");
    return ext2_status(err, "opening the ext2/3/4 file system");
  }
  std::unique_ptr<Ext2Volume> vol(new Ext2Volume(dev, fs, writable, name));
  vol->undo_ = undo;
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
    if (fs->super->s_state & EXT2_ERROR_FS)
      return refuse(
          Status::Error(EROFS, "the file system is marked as having errors; run e2fsck before writing to it"));
    err = ext2fs_read_bitmaps(fs);
    if (err) return refuse(ext2_status(err, "reading the block and inode bitmaps"));
    // Mark the file system in use until Close(), as the kernel does, so a
    // crash leaves it flagged for e2fsck.
    fs->super->s_mnt_count++;
    fs->super->s_mtime = static_cast<uint32_t>(time(nullptr));
    fs->super->s_state &= ~EXT2_VALID_FS;
    ext2fs_mark_super_dirty(fs);
    undo->begin();
    err = ext2fs_flush2(fs, 0);
    Status st = err ? with_device_error(ext2_status(err, "writing the superblock"), *undo) : undo->first_error();
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
    if (!st.ok() && undo_) st = with_device_error(st, *undo_);
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
    if (err) st = ext2_status(err, "closing the file system");
  } else {
    ext2fs_free(fs_);  // never write again after a failure
  }
  fs_ = nullptr;
  {
    std::lock_guard<std::mutex> rg(g_registry_mu);
    registry().erase(channel_name_);
  }
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
  if (err) return ext2_status(err, "writing file system metadata");
  return dev_->flush();
}

// ---------------------------------------------------------------- inodes

Status Ext2Volume::ReadInodeLocked(ext2_ino_t ino, ext2_inode_large& inode) {
  std::memset(&inode, 0, sizeof inode);
  if (ino < EXT2_ROOT_INO || ino > fs_->super->s_inodes_count)
    return Status::Error(ENOENT, "inode " + std::to_string(ino) + " is out of range");
  errcode_t err = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
  return ext2_status(err, "reading inode " + std::to_string(ino));
}

Status Ext2Volume::WriteInodeLocked(ext2_ino_t ino, ext2_inode_large& inode) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  errcode_t err = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
  return ext2_status(err, "writing inode " + std::to_string(ino));
}

Result<Ext2Stat> Ext2Volume::StatLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  Ext2Stat s;
  s.ino = ino;
  s.mode = in.i_mode;
  s.nlink = in.i_links_count;
  s.uid = inode_uid(in);
  s.gid = inode_gid(in);
  s.size = EXT2_I_SIZE(&in);
  s.blocks512 = ext2fs_get_stat_i_blocks(fs_, reinterpret_cast<ext2_inode*>(&in));
  if (LINUX_S_ISCHR(in.i_mode) || LINUX_S_ISBLK(in.i_mode)) s.rdev = decode_rdev(in);
  s.generation = in.i_generation;
  s.atime = decode_time(fs_, in, in.i_atime, in.i_atime_extra, VD_FIELD_END(i_atime_extra));
  s.mtime = decode_time(fs_, in, in.i_mtime, in.i_mtime_extra, VD_FIELD_END(i_mtime_extra));
  s.ctime = decode_time(fs_, in, in.i_ctime, in.i_ctime_extra, VD_FIELD_END(i_ctime_extra));
  return s;
}

Status Ext2Volume::TouchLocked(ext2_ino_t ino, bool mtime, bool ctime) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  auto now = now_ts();
  if (mtime) set_mtime(fs_, in, now);
  if (ctime) set_ctime(fs_, in, now);
  return WriteInodeLocked(ino, in);
}

Status Ext2Volume::SetAttrLocked(ext2_ino_t ino, std::optional<uint32_t> mode, std::optional<uint32_t> uid,
                                 std::optional<uint32_t> gid, std::optional<struct timespec> atime,
                                 std::optional<struct timespec> mtime) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (mode) in.i_mode = static_cast<__u16>((in.i_mode & LINUX_S_IFMT) | (*mode & 07777));
  if (uid) {
    in.i_uid = static_cast<__u16>(*uid & 0xffff);
    ext2fs_set_i_uid_high(in, *uid >> 16);
  }
  if (gid) {
    in.i_gid = static_cast<__u16>(*gid & 0xffff);
    ext2fs_set_i_gid_high(in, *gid >> 16);
  }
  if (atime) set_atime(fs_, in, *atime);
  if (mtime) set_mtime(fs_, in, *mtime);
  set_ctime(fs_, in, now_ts());
  return WriteInodeLocked(ino, in);
}

// ---------------------------------------------------------------- names

Result<ext2_ino_t> Ext2Volume::ResolveLocked(const std::string& path, bool follow_last) {
  if (path.empty() || path[0] != '/') return Status::Invalid("guest path '" + path + "' is not absolute");
  if (path.find_first_not_of('/') == std::string::npos) return ext2_ino_t{EXT2_ROOT_INO};
  ext2_ino_t ino = 0;
  errcode_t err = follow_last ? ext2fs_namei_follow(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino)
                              : ext2fs_namei(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino);
  if (err) return ext2_status(err, "looking up '" + path + "'");
  return ino;
}

Result<ext2_ino_t> Ext2Volume::LookupLocked(ext2_ino_t dir, const std::string& name) {
  if (name.size() > EXT2_NAME_LEN) return Status::Error(ENAMETOOLONG, "file name longer than 255 bytes");
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_lookup(fs_, dir, name.data(), static_cast<int>(name.size()), nullptr, &ino);
  if (err) return ext2_status(err, "looking up '" + name + "' in folder inode " + std::to_string(dir));
  return ino;
}

Result<std::pair<ext2_ino_t, std::string>> Ext2Volume::ParentOfLocked(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return Status::Invalid("guest path '" + path + "' is not absolute");
  std::string name = p.substr(slash + 1);
  VDKIT_RETURN_IF_ERROR(check_name(name));
  std::string parent = slash == 0 ? "/" : p.substr(0, slash);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t dir, ResolveLocked(parent, true));
  return std::make_pair(dir, name);
}

Result<std::vector<Ext2DirEntry>> Ext2Volume::ReadDirLocked(ext2_ino_t dir) {
  struct Ctx {
    std::vector<Ext2DirEntry> out;
  } ctx;
  auto cb = [](ext2_ino_t, int entry, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE) return 0;
    int len = ext2fs_dirent_name_len(d);
    Ext2DirEntry e;
    e.name.assign(d->name, len);
    e.ino = d->inode;
    e.type = dt_of_ft(ext2fs_dirent_file_type(d));
    static_cast<Ctx*>(priv)->out.push_back(std::move(e));
    return 0;
  };
  errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, cb, &ctx);
  if (err) return ext2_status(err, "reading folder inode " + std::to_string(dir));
  return std::move(ctx.out);
}

Result<std::string> Ext2Volume::ReadLinkLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (!LINUX_S_ISLNK(in.i_mode)) return Status::Invalid("inode " + std::to_string(ino) + " is not a symlink");
  uint64_t size = EXT2_I_SIZE(&in);
  // A symlink target is at most one block (PATH_MAX on Linux); anything larger is corrupt.
  if (size >= fs_->blocksize || size >= 4096)
    return Status::Error(EIO, "symlink inode " + std::to_string(ino) + " has a corrupt size " + std::to_string(size));
  if (ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in)))
    return std::string(reinterpret_cast<const char*>(in.i_block), size);
  std::string out(size, '\0');
  std::unique_lock<std::mutex> dummy;
  VDKIT_ASSIGN_OR_RETURN(size_t n,
                         ReadLocked(dummy, ino, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), size)));
  out.resize(n);
  return out;
}

Status Ext2Volume::LinkEntryLocked(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, uint32_t mode) {
  errcode_t err = ext2fs_link(fs_, dir, name.c_str(), ino, ext2_file_type(mode));
  if (err == EXT2_ET_DIR_NO_SPACE) {
    err = ext2fs_expand_dir(fs_, dir);
    if (err) return ext2_status(err, "growing folder inode " + std::to_string(dir));
    err = ext2fs_link(fs_, dir, name.c_str(), ino, ext2_file_type(mode));
  }
  if (err) return ext2_status(err, "adding '" + name + "' to folder inode " + std::to_string(dir));
  return TouchLocked(dir, true, true);
}

Result<ext2_ino_t> Ext2Volume::CreateLocked(ext2_ino_t dir, const std::string& name, uint32_t mode, uint32_t uid,
                                            uint32_t gid, uint64_t rdev) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  if (LookupLocked(dir, name).ok()) return Status::Error(EEXIST, "'" + name + "' exists");
  if (LINUX_S_ISLNK(mode)) return Status::Invalid("use SymlinkLocked for symlinks");
  errcode_t err;
  ext2_ino_t ino = 0;
  if (LINUX_S_ISDIR(mode)) {
    err = ext2fs_mkdir(fs_, dir, 0, name.c_str());
    if (err == EXT2_ET_DIR_NO_SPACE) {
      err = ext2fs_expand_dir(fs_, dir);
      if (!err) err = ext2fs_mkdir(fs_, dir, 0, name.c_str());
    }
    if (err) return ext2_status(err, "creating folder '" + name + "'");
    VDKIT_ASSIGN_OR_RETURN(ino, LookupLocked(dir, name));
    VDKIT_RETURN_IF_ERROR(SetAttrLocked(ino, mode, uid, gid, now_ts(), now_ts()));
    VDKIT_RETURN_IF_ERROR(TouchLocked(dir, true, true));
    return ino;
  }
  err = ext2fs_new_inode(fs_, dir, static_cast<int>(mode), nullptr, &ino);
  if (err) return ext2_status(err, "allocating an inode for '" + name + "'");
  VDKIT_RETURN_IF_ERROR(LinkEntryLocked(dir, name, ino, mode));
  ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);

  ext2_inode_large in;
  std::memset(&in, 0, sizeof in);
  in.i_mode = static_cast<__u16>(mode);
  in.i_uid = static_cast<__u16>(uid & 0xffff);
  ext2fs_set_i_uid_high(in, uid >> 16);
  in.i_gid = static_cast<__u16>(gid & 0xffff);
  ext2fs_set_i_gid_high(in, gid >> 16);
  in.i_links_count = 1;
  if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE)
    in.i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  auto now = now_ts();
  set_atime(fs_, in, now);
  set_mtime(fs_, in, now);
  set_ctime(fs_, in, now);
  if (LINUX_S_ISCHR(mode) || LINUX_S_ISBLK(mode)) {
    encode_rdev(in, rdev);
  } else if (LINUX_S_ISREG(mode) && ext2fs_has_feature_extents(fs_->super)) {
    // An empty extent tree in i_block, as the kernel makes for new files.
    ext2_extent_handle_t h;
    err = ext2fs_extent_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&in), &h);
    if (err) return ext2_status(err, "initialising the extent tree of '" + name + "'");
    ext2fs_extent_free(h);
  }
  err = ext2fs_write_new_inode(fs_, ino, reinterpret_cast<ext2_inode*>(&in));
  if (err) return ext2_status(err, "writing the new inode of '" + name + "'");
  // write_new_inode keeps only the first 128 bytes; write the whole inode (nanosecond times).
  if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE) {
    ext2_inode_large cur;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, cur));
    set_atime(fs_, cur, now);
    set_mtime(fs_, cur, now);
    set_ctime(fs_, cur, now);
    VDKIT_RETURN_IF_ERROR(WriteInodeLocked(ino, cur));
  }
  return ino;
}

Result<ext2_ino_t> Ext2Volume::SymlinkLocked(ext2_ino_t dir, const std::string& name, const std::string& target,
                                             uint32_t uid, uint32_t gid) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  if (target.empty() || target.size() >= std::min<uint32_t>(fs_->blocksize, 4096))
    return Status::Error(ENAMETOOLONG, "symlink target is empty or longer than a block");
  if (LookupLocked(dir, name).ok()) return Status::Error(EEXIST, "'" + name + "' exists");
  errcode_t err = ext2fs_symlink(fs_, dir, 0, name.c_str(), target.c_str());
  if (err == EXT2_ET_DIR_NO_SPACE) {
    err = ext2fs_expand_dir(fs_, dir);
    if (!err) err = ext2fs_symlink(fs_, dir, 0, name.c_str(), target.c_str());
  }
  if (err) return ext2_status(err, "creating symlink '" + name + "'");
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, LookupLocked(dir, name));
  VDKIT_RETURN_IF_ERROR(SetAttrLocked(ino, std::nullopt, uid, gid, now_ts(), now_ts()));
  VDKIT_RETURN_IF_ERROR(TouchLocked(dir, true, true));
  return ino;
}

Status Ext2Volume::LinkLocked(ext2_ino_t ino, ext2_ino_t dir, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (LINUX_S_ISDIR(in.i_mode)) return Status::Error(EPERM, "hard links to folders are not allowed");
  if (in.i_links_count >= EXT2_LINK_MAX) return Status::Error(EMLINK, "too many links");
  if (LookupLocked(dir, name).ok()) return Status::Error(EEXIST, "'" + name + "' exists");
  VDKIT_RETURN_IF_ERROR(LinkEntryLocked(dir, name, ino, in.i_mode));
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  in.i_links_count++;
  set_ctime(fs_, in, now_ts());
  return WriteInodeLocked(ino, in);
}

Status Ext2Volume::FreeInodeLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  errcode_t err = 0;
  if ((in.i_flags & EXT4_INLINE_DATA_FL) || ext2fs_inode_has_valid_blocks2(fs_, reinterpret_cast<ext2_inode*>(&in))) {
    err = ext2fs_punch(fs_, ino, reinterpret_cast<ext2_inode*>(&in), nullptr, 0, ~0ULL);
    if (err) return ext2_status(err, "freeing the blocks of inode " + std::to_string(ino));
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  }
  if (ext2fs_file_acl_block(fs_, reinterpret_cast<ext2_inode*>(&in))) {
    err = ext2fs_free_ext_attr(fs_, ino, &in);
    if (err) return ext2_status(err, "freeing the extended attributes of inode " + std::to_string(ino));
  }
  in.i_links_count = 0;
  in.i_dtime = static_cast<uint32_t>(time(nullptr));
  VDKIT_RETURN_IF_ERROR(WriteInodeLocked(ino, in));
  ext2fs_inode_alloc_stats2(fs_, ino, -1, LINUX_S_ISDIR(in.i_mode));
  return Status::Ok();
}

Status Ext2Volume::DropLinkLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (in.i_links_count > 0) in.i_links_count--;
  set_ctime(fs_, in, now_ts());
  VDKIT_RETURN_IF_ERROR(WriteInodeLocked(ino, in));
  if (in.i_links_count == 0 && open_count_.count(ino) == 0) return FreeInodeLocked(ino);
  return Status::Ok();
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

Status Ext2Volume::UnlinkLocked(ext2_ino_t dir, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, LookupLocked(dir, name));
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (LINUX_S_ISDIR(in.i_mode)) return Status::Error(EISDIR, "'" + name + "' is a folder");
  errcode_t err = ext2fs_unlink(fs_, dir, name.c_str(), ino, 0);
  if (err) return ext2_status(err, "removing '" + name + "'");
  VDKIT_RETURN_IF_ERROR(TouchLocked(dir, true, true));
  return DropLinkLocked(ino);
}

namespace {
Result<bool> dir_is_empty(ext2_filsys fs, ext2_ino_t dir) {
  bool empty = true;
  auto cb = [](ext2_ino_t, int entry, struct ext2_dir_entry*, int, int, char*, void* priv) -> int {
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE) return 0;
    *static_cast<bool*>(priv) = false;
    return DIRENT_ABORT;
  };
  errcode_t err = ext2fs_dir_iterate2(fs, dir, 0, nullptr, cb, &empty);
  if (err) return ext2_status(err, "reading folder inode " + std::to_string(dir));
  return empty;
}

// Points the entry `name` of dir at ino (rename over an existing name).
Status switch_entry(ext2_filsys fs, ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int ft) {
  struct Ctx {
    const std::string* name;
    ext2_ino_t ino;
    int ft;
    bool done;
  } ctx{&name, ino, ft, false};
  auto cb = [](ext2_ino_t, int, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    auto* c = static_cast<Ctx*>(priv);
    if (d->inode == 0) return 0;
    int len = ext2fs_dirent_name_len(d);
    if (static_cast<size_t>(len) != c->name->size() || std::memcmp(d->name, c->name->data(), len) != 0) return 0;
    d->inode = c->ino;
    ext2fs_dirent_set_file_type(d, c->ft);
    c->done = true;
    return DIRENT_CHANGED | DIRENT_ABORT;
  };
  errcode_t err = ext2fs_dir_iterate2(fs, dir, 0, nullptr, cb, &ctx);
  if (err) return ext2_status(err, "updating '" + name + "'");
  if (!ctx.done) return Status::Error(ENOENT, "'" + name + "' vanished during rename");
  return Status::Ok();
}

Status set_dotdot(ext2_filsys fs, ext2_ino_t dir, ext2_ino_t parent) {
  auto cb = [](ext2_ino_t, int entry, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    if (entry != DIRENT_DOT_DOT_FILE) return 0;
    d->inode = *static_cast<ext2_ino_t*>(priv);
    return DIRENT_CHANGED | DIRENT_ABORT;
  };
  errcode_t err = ext2fs_dir_iterate2(fs, dir, DIRENT_FLAG_INCLUDE_EMPTY, nullptr, cb, &parent);
  return ext2_status(err, "updating '..' of folder inode " + std::to_string(dir));
}
}  // namespace

Status Ext2Volume::RmdirLocked(ext2_ino_t dir, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, LookupLocked(dir, name));
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (!LINUX_S_ISDIR(in.i_mode)) return Status::Error(ENOTDIR, "'" + name + "' is not a folder");
  VDKIT_ASSIGN_OR_RETURN(bool empty, dir_is_empty(fs_, ino));
  if (!empty) return Status::Error(ENOTEMPTY, "folder '" + name + "' is not empty");
  errcode_t err = ext2fs_unlink(fs_, dir, name.c_str(), ino, 0);
  if (err) return ext2_status(err, "removing folder '" + name + "'");
  VDKIT_RETURN_IF_ERROR(FreeInodeLocked(ino));
  ext2_inode_large pin;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(dir, pin));
  if (pin.i_links_count > 1) pin.i_links_count--;
  auto now = now_ts();
  set_mtime(fs_, pin, now);
  set_ctime(fs_, pin, now);
  return WriteInodeLocked(dir, pin);
}

Status Ext2Volume::RenameLocked(ext2_ino_t from_dir, const std::string& from, ext2_ino_t to_dir,
                                const std::string& to, bool noreplace) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(from));
  VDKIT_RETURN_IF_ERROR(check_name(to));
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t src, LookupLocked(from_dir, from));
  ext2_inode_large sin;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(src, sin));
  bool src_dir = LINUX_S_ISDIR(sin.i_mode);
  auto dst_r = LookupLocked(to_dir, to);
  ext2_ino_t dst = dst_r.ok() ? *dst_r : 0;
  if (!dst_r.ok() && dst_r.status().code() != ENOENT) return dst_r.status();
  if (dst == src) return Status::Ok();
  bool dst_dir = false;
  if (dst) {
    if (noreplace) return Status::Error(EEXIST, "'" + to + "' exists");
    ext2_inode_large din;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(dst, din));
    dst_dir = LINUX_S_ISDIR(din.i_mode);
    if (src_dir && !dst_dir) return Status::Error(ENOTDIR, "'" + to + "' is not a folder");
    if (!src_dir && dst_dir) return Status::Error(EISDIR, "'" + to + "' is a folder");
    if (dst_dir) {
      VDKIT_ASSIGN_OR_RETURN(bool empty, dir_is_empty(fs_, dst));
      if (!empty) return Status::Error(ENOTEMPTY, "folder '" + to + "' is not empty");
    }
  }
  if (src_dir && from_dir != to_dir) {
    // A folder must not move below itself: walk up from to_dir to the root.
    ext2_ino_t cur = to_dir;
    for (int depth = 0; cur != EXT2_ROOT_INO; ++depth) {
      if (cur == src) return Status::Invalid("cannot move a folder into itself");
      if (depth > 4096) return Status::Error(ELOOP, "folder tree too deep or looping");
      VDKIT_ASSIGN_OR_RETURN(cur, LookupLocked(cur, ".."));
    }
  }
  // The target name switches to the source in one directory write, so it never disappears.
  if (dst) VDKIT_RETURN_IF_ERROR(switch_entry(fs_, to_dir, to, src, ext2_file_type(sin.i_mode)));
  else VDKIT_RETURN_IF_ERROR(LinkEntryLocked(to_dir, to, src, sin.i_mode));
  errcode_t err = ext2fs_unlink(fs_, from_dir, from.c_str(), src, 0);
  if (err) return ext2_status(err, "removing the old name '" + from + "'");
  if (dst) {
    if (dst_dir) VDKIT_RETURN_IF_ERROR(FreeInodeLocked(dst));
    else VDKIT_RETURN_IF_ERROR(DropLinkLocked(dst));
  }
  int to_delta = 0, from_delta = 0;
  if (src_dir && from_dir != to_dir) {
    VDKIT_RETURN_IF_ERROR(set_dotdot(fs_, src, to_dir));
    to_delta++;
    from_delta--;
  }
  if (dst_dir) to_delta--;
  auto now = now_ts();
  auto adjust = [&](ext2_ino_t d, int delta) -> Status {
    ext2_inode_large din;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(d, din));
    din.i_links_count = static_cast<__u16>(std::max<int>(1, din.i_links_count + delta));
    set_mtime(fs_, din, now);
    set_ctime(fs_, din, now);
    return WriteInodeLocked(d, din);
  };
  if (from_dir == to_dir) {
    VDKIT_RETURN_IF_ERROR(adjust(to_dir, from_delta + to_delta));
  } else {
    VDKIT_RETURN_IF_ERROR(adjust(from_dir, from_delta));
    VDKIT_RETURN_IF_ERROR(adjust(to_dir, to_delta));
  }
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(src, sin));
  set_ctime(fs_, sin, now);
  return WriteInodeLocked(src, sin);
}

// ---------------------------------------------------------------- data

Result<size_t> Ext2Volume::ReadLocked(std::unique_lock<std::mutex>& lock, ext2_ino_t ino, uint64_t offset,
                                      std::span<uint8_t> buf) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  uint64_t size = EXT2_I_SIZE(&in);
  if (offset >= size || buf.empty()) return size_t{0};
  size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - offset));
  const uint64_t bs = fs_->blocksize;
  constexpr size_t kDirectReadMin = 64 * 1024;
  bool extent_mapped = (in.i_flags & EXT4_EXTENTS_FL) && !(in.i_flags & EXT4_INLINE_DATA_FL);
  if (extent_mapped && len >= kDirectReadMin && lock.owns_lock()) {
    // Map the range to device runs with the lock held, then read the device
    // without it so other requests go on while big reads stream.
    struct Run {
      uint64_t file_off, dev_off, len;  // dev_off == UINT64_MAX: reads as zeros
    };
    std::vector<Run> runs;
    ext2_extent_handle_t h;
    errcode_t err = ext2fs_extent_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&in), &h);
    if (err) return ext2_status(err, "reading the extent tree of inode " + std::to_string(ino));
    const uint64_t fs_blocks = ext2fs_blocks_count(fs_->super);
    uint64_t pos = offset, end = offset + len;
    while (pos < end) {
      blk64_t lblk = pos / bs;
      uint64_t in_block = pos % bs;
      struct ext2fs_extent ex;
      err = ext2fs_extent_goto(h, lblk);
      if (!err) err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ex);
      if (err == 0 && ex.e_lblk <= lblk && lblk < ex.e_lblk + ex.e_len) {
        uint64_t blocks_left = ex.e_lblk + ex.e_len - lblk;
        uint64_t n = std::min<uint64_t>(end - pos, blocks_left * bs - in_block);
        uint64_t pblk = ex.e_pblk + (lblk - ex.e_lblk);
        if ((ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT)) {
          runs.push_back({pos - offset, UINT64_MAX, n});
        } else {
          if (pblk >= fs_blocks || blocks_left > fs_blocks - pblk) {
            ext2fs_extent_free(h);
            return Status::Error(EIO, "inode " + std::to_string(ino) + ": extent at logical block " +
                                          std::to_string(ex.e_lblk) + " points past the end of the file system");
          }
          uint64_t dev_off = pblk * bs + in_block;
          if (!runs.empty() && runs.back().dev_off != UINT64_MAX &&
              runs.back().dev_off + runs.back().len == dev_off)
            runs.back().len += n;
          else
            runs.push_back({pos - offset, dev_off, n});
        }
        pos += n;
      } else if (err == 0 || err == EXT2_ET_EXTENT_NOT_FOUND) {
        uint64_t n = std::min<uint64_t>(end - pos, bs - in_block);  // a hole block
        runs.push_back({pos - offset, UINT64_MAX, n});
        pos += n;
      } else {
        ext2fs_extent_free(h);
        return ext2_status(err, "mapping block " + std::to_string(lblk) + " of inode " + std::to_string(ino));
      }
    }
    ext2fs_extent_free(h);
    // Read-only volumes drop the lock for the device reads. A writable one
    // keeps it: a concurrent truncate could hand these blocks to another file.
    if (!writable_) lock.unlock();
    Status st;
    for (const Run& r : runs) {
      auto dst = buf.subspan(r.file_off, r.len);
      if (r.dev_off == UINT64_MAX) std::memset(dst.data(), 0, dst.size());
      else if (st = dev_->read(r.dev_off, dst); !st.ok()) break;
    }
    if (!lock.owns_lock()) lock.lock();
    if (!st.ok()) return Status::Error(EIO, "reading inode " + std::to_string(ino) + ": " + st.message());
    return len;
  }
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&in), 0, &f);
  if (err) return ext2_status(err, "opening inode " + std::to_string(ino));
  err = ext2fs_file_llseek(f, offset, EXT2_SEEK_SET, nullptr);
  size_t done = 0;
  while (!err && done < len) {
    unsigned int got = 0;
    unsigned int want = static_cast<unsigned int>(std::min<size_t>(len - done, 1u << 30));
    err = ext2fs_file_read(f, buf.data() + done, want, &got);
    if (got == 0) break;
    done += got;
  }
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(err, "reading inode " + std::to_string(ino));
  if (cerr) return ext2_status(cerr, "closing inode " + std::to_string(ino));
  return done;
}

Result<size_t> Ext2Volume::WriteLocked(ext2_ino_t ino, uint64_t offset, std::span<const uint8_t> buf) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  if (buf.empty()) return size_t{0};
  auto end = checked_add(offset, buf.size());
  if (!end || *end > (1ull << 44)) return Status::Error(EFBIG, "write beyond the largest ext4 file size");
  {
    // libext2fs leaves a half-mapped inode behind when it runs out of blocks in
    // the middle of a write, so refuse up front when the space cannot be there.
    ext2_inode_large in;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
    const uint64_t bs = fs_->blocksize;
    uint64_t size = EXT2_I_SIZE(&in);
    uint64_t allocated = ext2fs_get_stat_i_blocks(fs_, reinterpret_cast<ext2_inode*>(&in)) * 512;
    bool overwrite_of_dense_data = *end <= size && allocated >= size;
    uint64_t need = overwrite_of_dense_data ? 0 : div_round_up(buf.size(), bs) + 1;
    need += need / 256 + 4;  // extent tree and index blocks
    if (ext2fs_free_blocks_count(fs_->super) < need)
      return Status::Error(ENOSPC, "no space left on the guest file system");
  }
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, nullptr, EXT2_FILE_WRITE, &f);
  if (err) return ext2_status(err, "opening inode " + std::to_string(ino) + " for writing");
  err = ext2fs_file_llseek(f, offset, EXT2_SEEK_SET, nullptr);
  size_t done = 0;
  while (!err && done < buf.size()) {
    unsigned int wrote = 0;
    unsigned int want = static_cast<unsigned int>(std::min<size_t>(buf.size() - done, 1u << 30));
    err = ext2fs_file_write(f, buf.data() + done, want, &wrote);
    done += wrote;
    if (wrote == 0) break;
  }
  // ext2fs_file_write does not grow i_size past the end; do it here.
  if (!err) {
    __u64 cur = 0;
    ext2fs_file_get_lsize(f, &cur);
    if (offset + done > cur) err = ext2fs_file_set_size2(f, offset + done);
  }
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(err, "writing inode " + std::to_string(ino));
  if (cerr) return ext2_status(cerr, "writing inode " + std::to_string(ino));
  VDKIT_RETURN_IF_ERROR(TouchLocked(ino, true, true));
  return done;
}

Status Ext2Volume::TruncateLocked(ext2_ino_t ino, uint64_t size) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, nullptr, EXT2_FILE_WRITE, &f);
  if (err) return ext2_status(err, "opening inode " + std::to_string(ino) + " for truncation");
  err = ext2fs_file_set_size2(f, size);
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(err, "truncating inode " + std::to_string(ino));
  if (cerr) return ext2_status(cerr, "truncating inode " + std::to_string(ino));
  return TouchLocked(ino, true, true);
}

// ---------------------------------------------------------------- xattrs

namespace {
struct XattrHandle {
  struct ext2_xattr_handle* h = nullptr;
  ~XattrHandle() {
    if (h) ext2fs_xattrs_close(&h);
  }
};

Status open_xattrs(ext2_filsys fs, ext2_ino_t ino, XattrHandle& x) {
  errcode_t err = ext2fs_xattrs_open(fs, ino, &x.h);
  if (err) return ext2_status(err, "opening extended attributes of inode " + std::to_string(ino));
  err = ext2fs_xattrs_read(x.h);
  return ext2_status(err, "reading extended attributes of inode " + std::to_string(ino));
}
}  // namespace

Result<std::vector<std::string>> Ext2Volume::ListXattrsLocked(ext2_ino_t ino) {
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  std::vector<std::string> names;
  auto cb = [](char* name, char*, size_t, void* priv) -> int {
    static_cast<std::vector<std::string>*>(priv)->push_back(name);
    return 0;
  };
  errcode_t err = ext2fs_xattrs_iterate(x.h, cb, &names);
  if (err) return ext2_status(err, "listing extended attributes of inode " + std::to_string(ino));
  return names;
}

Result<std::string> Ext2Volume::GetXattrLocked(ext2_ino_t ino, const std::string& name) {
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  void* value = nullptr;
  size_t len = 0;
  errcode_t err = ext2fs_xattr_get(x.h, name.c_str(), &value, &len);
  if (err) return ext2_status(err, "extended attribute '" + name + "'");
  std::string out(static_cast<const char*>(value), len);
  ext2fs_free_mem(&value);
  return out;
}

namespace {
// A POSIX access ACL in the VFS xattr format (le32 version 2, then {le16 tag,
// le16 perm, le32 id} entries): the permission bits it implies, and whether it
// says nothing beyond them (then the kernel stores no ACL, only the mode).
struct AclMode {
  bool valid = false;
  bool equivalent_to_mode = true;
  uint32_t mode = 0;
};
AclMode parse_access_acl(std::string_view v) {
  AclMode r;
  if (v.size() < 4 || (v.size() - 4) % 8 != 0) return r;
  auto u16 = [&](size_t o) { return static_cast<uint32_t>(static_cast<uint8_t>(v[o]) | static_cast<uint8_t>(v[o + 1]) << 8); };
  if (u16(0) != 2 || u16(2) != 0) return r;
  uint32_t user = 0, group = 0, other = 0, mask = 0;
  bool has_mask = false;
  for (size_t o = 4; o < v.size(); o += 8) {
    uint32_t tag = u16(o), perm = u16(o + 2) & 7;
    switch (tag) {
      case 0x01: user = perm; break;
      case 0x04: group = perm; break;
      case 0x20: other = perm; break;
      case 0x10: mask = perm; has_mask = true; r.equivalent_to_mode = false; break;
      case 0x02:
      case 0x08: r.equivalent_to_mode = false; break;
      default: return r;
    }
  }
  r.valid = true;
  r.mode = user << 6 | (has_mask ? mask : group) << 3 | other;
  return r;
}
}  // namespace

Status Ext2Volume::SetXattrLocked(ext2_ino_t ino, const std::string& name, std::string_view value, int flags) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  if (name == "system.posix_acl_access") {
    // As the kernel does: the ACL's owner/group(mask)/other entries are the
    // mode bits, and an ACL that says no more than the mode is not stored.
    AclMode acl = parse_access_acl(value);
    if (!acl.valid) return Status::Invalid("malformed POSIX ACL in system.posix_acl_access");
    ext2_inode_large in;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
    uint32_t mode = (in.i_mode & ~0777u) | acl.mode;
    VDKIT_RETURN_IF_ERROR(SetAttrLocked(ino, mode, std::nullopt, std::nullopt, std::nullopt, std::nullopt));
    if (acl.equivalent_to_mode) {
      auto had = GetXattrLocked(ino, name);
      if (had.ok()) return RemoveXattrLocked(ino, name);
      return Status::Ok();
    }
  }
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    void* v = nullptr;
    size_t l = 0;
    errcode_t gerr = ext2fs_xattr_get(x.h, name.c_str(), &v, &l);
    if (!gerr) ext2fs_free_mem(&v);
    if ((flags & XATTR_CREATE) && !gerr) return Status::Error(EEXIST, "extended attribute '" + name + "' exists");
    if ((flags & XATTR_REPLACE) && gerr == EXT2_ET_EA_KEY_NOT_FOUND)
      return Status::Error(ENODATA, "no extended attribute '" + name + "'");
  }
  errcode_t err = ext2fs_xattr_set(x.h, name.c_str(), value.data(), value.size());
  if (err) return ext2_status(err, "setting extended attribute '" + name + "'");
  return TouchLocked(ino, false, true);
}

Status Ext2Volume::RemoveXattrLocked(ext2_ino_t ino, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  void* v = nullptr;
  size_t l = 0;
  errcode_t err = ext2fs_xattr_get(x.h, name.c_str(), &v, &l);
  if (err) return ext2_status(err, "extended attribute '" + name + "'");
  ext2fs_free_mem(&v);
  err = ext2fs_xattr_remove(x.h, name.c_str());
  if (err) return ext2_status(err, "removing extended attribute '" + name + "'");
  return TouchLocked(ino, false, true);
}

// ---------------------------------------------------------------- path helpers

Result<Ext2Stat> Ext2Volume::Stat(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return StatLocked(ino);
}

Result<Ext2Stat> Ext2Volume::Lstat(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return StatLocked(ino);
}

bool Ext2Volume::Exists(const std::string& path) { return Lstat(path).ok(); }

Result<std::string> Ext2Volume::ReadFile(const std::string& path) {
  std::unique_lock<std::mutex> lock(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  VDKIT_ASSIGN_OR_RETURN(Ext2Stat st, StatLocked(ino));
  if (LINUX_S_ISDIR(st.mode)) return Status::Error(EISDIR, "'" + path + "' is a folder");
  constexpr uint64_t kMaxReadFile = 1ull << 30;  // whole-file reads are for config files, not disk images
  if (st.size > kMaxReadFile)
    return Status::Error(EFBIG, "'" + path + "' is larger than " + std::to_string(kMaxReadFile) + " bytes");
  std::string out(st.size, '\0');
  VDKIT_ASSIGN_OR_RETURN(
      size_t n, ReadLocked(lock, ino, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size())));
  out.resize(n);
  return out;
}

Status Ext2Volume::WriteFile(const std::string& path_in, std::string_view data, uint32_t mode_if_new) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  // Start from a file system that is whole on the device, so rolling back lands on a consistent state.
  if (fs_->flags & (EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY | EXT2_FLAG_IB_DIRTY)) VDKIT_RETURN_IF_ERROR(FlushLocked());
  if (undo_) undo_->begin();
  Status st = WriteFileLocked(path_in, data, mode_if_new);
  if (st.ok()) st = FlushLocked();
  if (st.ok() && undo_) st = undo_->first_error();
  if (!st.ok()) return undo_ ? RollBackLocked(with_device_error(st, *undo_).Context("writing '" + path_in + "'")) : st;
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
  errcode_t err = ext2fs_open2(channel_name_.c_str(), nullptr, flags, 0, 0, &g_vdkit_io_manager, &fs);
  if (err) return ext2_status(err, "reopening the file system");
  if (writable_) {
    err = ext2fs_read_bitmaps(fs);
    if (err) {
      ext2fs_free(fs);
      return ext2_status(err, "reading the block and inode bitmaps again");
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

Status Ext2Volume::Mkdir(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return CreateLocked(parent.first, parent.second, LINUX_S_IFDIR | (mode & 07777), uid, gid).status();
}

Status Ext2Volume::Unlink(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return UnlinkLocked(parent.first, parent.second);
}

Status Ext2Volume::Rmdir(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return RmdirLocked(parent.first, parent.second);
}

Status Ext2Volume::Symlink(const std::string& target, const std::string& linkpath) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(linkpath));
  return SymlinkLocked(parent.first, parent.second, target, 0, 0).status();
}

Status Ext2Volume::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto a, ParentOfLocked(from));
  VDKIT_ASSIGN_OR_RETURN(auto b, ParentOfLocked(to));
  return RenameLocked(a.first, a.second, b.first, b.second);
}

Status Ext2Volume::Chmod(const std::string& path, uint32_t mode) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return SetAttrLocked(ino, mode, std::nullopt, std::nullopt, std::nullopt, std::nullopt);
}

Status Ext2Volume::Chown(const std::string& path, uint32_t uid, uint32_t gid) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return SetAttrLocked(ino, std::nullopt, uid, gid, std::nullopt, std::nullopt);
}

Result<std::vector<Ext2DirEntry>> Ext2Volume::ReadDir(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return ReadDirLocked(ino);
}

Result<std::string> Ext2Volume::ReadLink(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return ReadLinkLocked(ino);
}

Result<std::vector<std::string>> Ext2Volume::ListXattrs(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return ListXattrsLocked(ino);
}

Result<std::string> Ext2Volume::GetXattr(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return GetXattrLocked(ino, name);
}

Status Ext2Volume::SetXattr(const std::string& path, const std::string& name, std::string_view value) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return SetXattrLocked(ino, name, value);
}

Status Ext2Volume::RemoveXattr(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return RemoveXattrLocked(ino, name);
}

}  // namespace vdkit
