// The pre-write checks of consistency.h.
#include "guestfs/ext2/consistency.h"

#include <ext2fs/ext2_fs.h>

#include <bit>
#include <vector>

#include "guestfs/ext2/errors.h"

namespace vdkit::ext2 {
namespace {

const std::string kHint = "; run e2fsck on a copy, or pass --force to write anyway";

// Set bits in the first `bits` bits of buf.
uint64_t count_set(const std::vector<uint8_t>& buf, uint64_t bits) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < bits / 8; ++i) n += std::popcount(buf[i]);
  for (uint64_t b = bits / 8 * 8; b < bits; ++b) n += (buf[b / 8] >> (b % 8)) & 1;
  return n;
}

uint64_t used_blocks_in_group(ext2_filsys fs, dgrp_t g, std::vector<uint8_t>& buf, errcode_t& err) {
  const blk64_t first = ext2fs_group_first_block2(fs, g), last = ext2fs_group_last_block2(fs, g);
  const uint64_t ratio = EXT2FS_CLUSTER_RATIO(fs);
  if (ratio > 1) {  // bigalloc: the bitmap counts clusters
    uint64_t used = 0;
    for (blk64_t b = first; b <= last; b += ratio) used += ext2fs_test_block_bitmap2(fs->block_map, b) ? 1 : 0;
    return used;
  }
  const uint64_t n = last - first + 1;
  buf.assign((n + 7) / 8, 0);
  err = ext2fs_get_block_bitmap_range2(fs->block_map, first, n, buf.data());
  return err ? 0 : count_set(buf, n);
}

}  // namespace

Status check_before_write(ext2_filsys fs) {
  ext2_super_block* s = fs->super;
  if (s->s_state & EXT2_ERROR_FS)
    return Status::Error(EROFS, "the file system is marked as having errors (superblock s_state)" + kHint);
  if (s->s_error_count)
    return Status::Error(EROFS, "the file system recorded " + std::to_string(s->s_error_count) +
                                    " errors (superblock s_error_count)" + kHint);
  if (!(s->s_state & EXT2_VALID_FS) && !ext2fs_has_feature_journal(s))
    return Status::Error(EROFS,
                         "the file system was not cleanly unmounted and has no journal to recover "
                         "(superblock s_state)" +
                             kHint);
  errcode_t err = ext2fs_check_desc(fs);
  if (err)
    return Status::Error(EROFS, "the group descriptors are inconsistent: " + std::string(error_message(err)) + kHint);
  std::vector<uint8_t> buf;
  for (dgrp_t g = 0; g < fs->group_desc_count; ++g) {
    const uint64_t clusters =
        (ext2fs_group_last_block2(fs, g) - ext2fs_group_first_block2(fs, g)) / EXT2FS_CLUSTER_RATIO(fs) + 1;
    const uint64_t used = used_blocks_in_group(fs, g, buf, err);
    if (err) return ext2_status(fs, err, "reading the block bitmap of group " + std::to_string(g));
    const uint64_t free_gd = ext2fs_bg_free_blocks_count(fs, g);
    if (clusters - used != free_gd)
      return Status::Error(EROFS, "group " + std::to_string(g) + ": its descriptor counts " + std::to_string(free_gd) +
                                      " free blocks, its block bitmap " + std::to_string(clusters - used) + kHint);
    const uint64_t ipg = s->s_inodes_per_group;
    buf.assign((ipg + 7) / 8, 0);
    err = ext2fs_get_inode_bitmap_range2(fs->inode_map, static_cast<uint64_t>(g) * ipg + 1, ipg, buf.data());
    if (err) return ext2_status(fs, err, "reading the inode bitmap of group " + std::to_string(g));
    const uint64_t free_inodes = ipg - count_set(buf, ipg);
    if (free_inodes != ext2fs_bg_free_inodes_count(fs, g))
      return Status::Error(EROFS, "group " + std::to_string(g) + ": its descriptor counts " +
                                      std::to_string(ext2fs_bg_free_inodes_count(fs, g)) +
                                      " free inodes, its inode bitmap " + std::to_string(free_inodes) + kHint);
  }
  return Status::Ok();
}

Status check_directory(ext2_filsys fs, ext2_ino_t dir, const std::string& path) {
  const std::string what = "folder '" + path + "' (inode " + std::to_string(dir) + ")";
  if (dir < 1 || dir > fs->super->s_inodes_count || !ext2fs_test_inode_bitmap2(fs->inode_map, dir))
    return Status::Error(EROFS, what + " is not marked in use in the inode bitmap" + kHint);
  errcode_t err = ext2fs_check_directory(fs, dir);
  if (err) return Status::Error(EROFS, what + ": " + std::string(error_message(err)) + kHint);
  struct Ctx {
    ext2_filsys fs;
    std::string bad;
  } ctx{fs, ""};
  auto cb = [](ext2_ino_t, int, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    auto* c = static_cast<Ctx*>(priv);
    if (d->inode == 0) return 0;
    std::string name(d->name, ext2fs_dirent_name_len(d));
    if (d->inode > c->fs->super->s_inodes_count)
      c->bad = "entry '" + name + "' names inode " + std::to_string(d->inode) + ", past the last inode";
    else if (!ext2fs_test_inode_bitmap2(c->fs->inode_map, d->inode))
      c->bad = "entry '" + name + "' names inode " + std::to_string(d->inode) + ", which the inode bitmap marks free";
    return c->bad.empty() ? 0 : DIRENT_ABORT;
  };
  err = ext2fs_dir_iterate2(fs, dir, 0, nullptr, cb, &ctx);
  if (err) return Status::Error(EROFS, what + " cannot be read whole: " + std::string(error_message(err)) + kHint);
  if (!ctx.bad.empty()) return Status::Error(EROFS, what + ": " + ctx.bad + kHint);
  return Status::Ok();
}

}  // namespace vdkit::ext2
