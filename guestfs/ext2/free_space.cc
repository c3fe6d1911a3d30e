// Ext2Volume::UnusedRanges: the free blocks of the block bitmap as byte ranges, for sparsify.
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit {

Result<uint64_t> Ext2Volume::UnusedRanges(ByteRanges& out) {
  std::lock_guard<std::mutex> g(mu_);
  out.clear();
  if (!fs_->block_map) {
    errcode_t err = ext2fs_read_block_bitmap(fs_);
    if (err) return ext2_status(fs_, err, "reading the block bitmap");
  }
  const uint64_t bs = fs_->blocksize;
  const blk64_t first = fs_->super->s_first_data_block, last = ext2fs_blocks_count(fs_->super) - 1;
  uint64_t free_blocks = 0;
  // Jumps from run to run, so a mostly-used or mostly-free bitmap costs little more than its number of runs.
  for (blk64_t start = first; start <= last;) {
    blk64_t zero = 0, set = 0;
    errcode_t err = ext2fs_find_first_zero_block_bitmap2(fs_->block_map, start, last, &zero);
    if (err == ENOENT) break;
    if (err) return ext2_status(fs_, err, "searching the block bitmap from block " + std::to_string(start));
    err = ext2fs_find_first_set_block_bitmap2(fs_->block_map, zero, last, &set);
    blk64_t end = err == ENOENT ? last + 1 : set;  // one past the free run
    if (err && err != ENOENT)
      return ext2_status(fs_, err, "searching the block bitmap from block " + std::to_string(zero));
    free_blocks += end - zero;
    out.emplace_back(zero * bs, (end - zero) * bs);
    start = end;
  }
  return free_blocks;
}

}  // namespace vdkit
