// Ext2Volume folder changes: create, link, unlink, rmdir and rename with rename(2)'s replace-in-one-write.
#include <algorithm>
#include <cstring>

#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"
#include "guestfs/ext2/inode_codec.h"

namespace vdkit {

using namespace ext2;

Status Ext2Volume::LinkEntryLocked(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, uint32_t mode) {
  errcode_t err = ext2fs_link(fs_, dir, name.c_str(), ino, ext2_file_type(mode));
  if (err == EXT2_ET_DIR_NO_SPACE) {
    err = ext2fs_expand_dir(fs_, dir);
    if (err) return ext2_status(fs_, err, "growing folder inode " + std::to_string(dir));
    err = ext2fs_link(fs_, dir, name.c_str(), ino, ext2_file_type(mode));
  }
  if (err) return ext2_status(fs_, err, "adding '" + name + "' to folder inode " + std::to_string(dir));
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
    if (err) return ext2_status(fs_, err, "creating folder '" + name + "'");
    VDKIT_ASSIGN_OR_RETURN(ino, LookupLocked(dir, name));
    VDKIT_RETURN_IF_ERROR(SetAttrLocked(ino, mode, uid, gid, now_ts(), now_ts()));
    VDKIT_RETURN_IF_ERROR(TouchLocked(dir, true, true));
    return ino;
  }
  err = ext2fs_new_inode(fs_, dir, static_cast<int>(mode), nullptr, &ino);
  if (err) return ext2_status(fs_, err, "allocating an inode for '" + name + "'");
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
    if (err) return ext2_status(fs_, err, "initialising the extent tree of '" + name + "'");
    ext2fs_extent_free(h);
  }
  err = ext2fs_write_new_inode(fs_, ino, reinterpret_cast<ext2_inode*>(&in));
  if (err) return ext2_status(fs_, err, "writing the new inode of '" + name + "'");
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
  if (err) return ext2_status(fs_, err, "creating symlink '" + name + "'");
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

Status Ext2Volume::UnlinkLocked(ext2_ino_t dir, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  VDKIT_RETURN_IF_ERROR(check_name(name));
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, LookupLocked(dir, name));
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (LINUX_S_ISDIR(in.i_mode)) return Status::Error(EISDIR, "'" + name + "' is a folder");
  errcode_t err = ext2fs_unlink(fs_, dir, name.c_str(), ino, 0);
  if (err) return ext2_status(fs_, err, "removing '" + name + "'");
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
  if (err) return ext2_status(fs, err, "reading folder inode " + std::to_string(dir));
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
  if (err) return ext2_status(fs, err, "updating '" + name + "'");
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
  return ext2_status(fs, err, "updating '..' of folder inode " + std::to_string(dir));
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
  if (err) return ext2_status(fs_, err, "removing folder '" + name + "'");
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
  if (err) return ext2_status(fs_, err, "removing the old name '" + from + "'");
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

}  // namespace vdkit
