// Ext2Volume inodes: read, write, stat, times and attributes, and freeing an inode no name or open file holds.
#include <ctime>
#include <cstring>

#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"
#include "guestfs/ext2/inode_codec.h"

namespace vdkit {

using namespace ext2;

Status Ext2Volume::ReadInodeLocked(ext2_ino_t ino, ext2_inode_large& inode) {
  std::memset(&inode, 0, sizeof inode);
  if (ino < EXT2_ROOT_INO || ino > fs_->super->s_inodes_count)
    return Status::Error(ENOENT, "inode " + std::to_string(ino) + " is out of range");
  errcode_t err = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
  return ext2_status(fs_, err, "reading inode " + std::to_string(ino));
}

Status Ext2Volume::WriteInodeLocked(ext2_ino_t ino, ext2_inode_large& inode) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  errcode_t err = ext2fs_write_inode_full(fs_, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
  return ext2_status(fs_, err, "writing inode " + std::to_string(ino));
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

Status Ext2Volume::FreeInodeLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  errcode_t err = 0;
  if ((in.i_flags & EXT4_INLINE_DATA_FL) || ext2fs_inode_has_valid_blocks2(fs_, reinterpret_cast<ext2_inode*>(&in))) {
    err = ext2fs_punch(fs_, ino, reinterpret_cast<ext2_inode*>(&in), nullptr, 0, ~0ULL);
    if (err) return ext2_status(fs_, err, "freeing the blocks of inode " + std::to_string(ino));
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  }
  if (ext2fs_file_acl_block(fs_, reinterpret_cast<ext2_inode*>(&in))) {
    err = ext2fs_free_ext_attr(fs_, ino, &in);
    if (err) return ext2_status(fs_, err, "freeing the extended attributes of inode " + std::to_string(ino));
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

}  // namespace vdkit
