// Inode field codecs: timestamps with their extra epoch bits, device numbers, file types, entry names.
#include "guestfs/ext2/inode_codec.h"

#include <dirent.h>
#include <sys/sysmacros.h>

#include <ctime>

namespace vdkit::ext2 {

bool has_extra(const ext2_filsys fs, const ext2_inode_large& in, size_t field_end) {
  return EXT2_INODE_SIZE(fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
         static_cast<size_t>(EXT2_GOOD_OLD_INODE_SIZE + in.i_extra_isize) >= field_end;
}

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

}  // namespace vdkit::ext2
