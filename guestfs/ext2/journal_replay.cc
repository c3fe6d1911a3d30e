// Journal recovery into a device: locate the journal through libext2fs, plan with journal_format, copy the blocks,
// then finish as the kernel does after a replay (clear needs-recovery, process the orphan list).
#include "guestfs/ext2/journal_replay.h"

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include <cstring>
#include <ctime>
#include <vector>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/io_manager.h"
#include "guestfs/ext2/journal_format.h"

namespace vdkit::ext2 {
namespace {

// A file system opened through the vdkit io_manager for the length of one step; closed without flushing unless
// Close() is called.
class ScopedFs {
 public:
  ~ScopedFs() {
    if (fs_) ext2fs_free(fs_);
    if (!name_.empty()) unregister_device(name_);
  }
  Status Open(std::shared_ptr<BlockDevice> dev, bool writable) {
    static std::once_flag errors_once;
    std::call_once(errors_once, [] { initialize_ext2_error_table(); });
    errors_ = std::make_shared<DeviceErrors>();
    name_ = register_device(std::move(dev), errors_);
    int flags = EXT2_FLAG_64BITS | EXT2_FLAG_THREADS | (writable ? EXT2_FLAG_RW : 0);
    return open_registered(name_, flags, errors_.get(), &fs_);
  }
  Status Close() {
    errcode_t err = ext2fs_close(fs_);
    if (err) return ext2_status(errors_.get(), err, "writing the superblock and group descriptors");
    fs_ = nullptr;  // ext2fs_close freed it
    return Status::Ok();
  }
  ext2_filsys fs() const { return fs_; }

 private:
  std::shared_ptr<DeviceErrors> errors_;
  std::string name_;
  ext2_filsys fs_ = nullptr;
};

// The journal as read through the file system: its superblock and where each journal block lies on the device.
struct JournalLocation {
  JournalSuperblock sb;
  std::vector<blk64_t> physical;  // journal block -> file-system block
  std::vector<uint8_t> super_block;
};

int block_map_cb(ext2_filsys, blk64_t* blocknr, e2_blkcnt_t blockcnt, blk64_t, int, void* priv) {
  auto* map = static_cast<std::vector<blk64_t>*>(priv);
  if (blockcnt >= 0 && static_cast<uint64_t>(blockcnt) < map->size()) (*map)[blockcnt] = *blocknr;
  return 0;
}

// Fills the report's static facts; locates the journal when it is internal and readable.
Status read_state(ext2_filsys fs, JournalReport& r, JournalLocation* loc) {
  ext2_super_block* s = fs->super;
  r.has_journal = ext2fs_has_feature_journal(s);
  r.needs_recovery = ext2fs_has_feature_journal_needs_recovery(s);
  if (!r.has_journal) return Status::Ok();
  if (ext2fs_has_feature_journal_dev(s) || s->s_journal_inum == 0) {
    r.external = true;
    return Status::Ok();
  }
  ext2_inode_large inode;
  errcode_t err = ext2fs_read_inode_full(fs, s->s_journal_inum, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
  if (err) return ext2_status(fs, err, "reading the journal inode " + std::to_string(s->s_journal_inum));
  const uint64_t blocks = EXT2_I_SIZE(&inode) / fs->blocksize;
  if (blocks < 2 || blocks > kMaxJournalBlocks)
    return Status::Corrupt("journal inode " + std::to_string(s->s_journal_inum) + ": size of " +
                           std::to_string(blocks) + " blocks (2 to " + std::to_string(kMaxJournalBlocks) + ")");
  std::vector<blk64_t> map(blocks, 0);
  err = ext2fs_block_iterate3(fs, s->s_journal_inum, BLOCK_FLAG_DATA_ONLY | BLOCK_FLAG_READ_ONLY, nullptr, block_map_cb,
                              &map);
  if (err) return ext2_status(fs, err, "mapping the journal inode's blocks");
  const uint64_t fs_blocks = ext2fs_blocks_count(s);
  for (uint64_t i = 0; i < blocks; ++i)
    if (map[i] == 0 || map[i] >= fs_blocks)
      return Status::Corrupt("journal inode: block " + std::to_string(i) + " is not mapped inside the file system");
  std::vector<uint8_t> sb(fs->blocksize);
  err = io_channel_read_blk64(fs->io, map[0], 1, sb.data());
  if (err) return ext2_status(fs, err, "reading the journal superblock");
  VDKIT_ASSIGN_OR_RETURN(JournalSuperblock parsed, parse_journal_superblock(sb, blocks, fs->blocksize));
  r.version = parsed.version;
  r.checksum = parsed.checksum_name();
  r.fast_commit = parsed.incompat & kJbd2IncompatFastCommit;
  if (loc) {
    loc->sb = parsed;
    loc->physical = std::move(map);
    loc->super_block = std::move(sb);
  }
  return Status::Ok();
}

// Cuts an orphan to its size, or frees it when no link is left, as the kernel's orphan cleanup does.
Status release_orphan(ext2_filsys fs, ext2_ino_t ino, ext2_inode_large& inode, bool& deleted) {
  ext2_inode* in = reinterpret_cast<ext2_inode*>(&inode);
  deleted = inode.i_links_count == 0;
  std::vector<char> buf(fs->blocksize * 3);
  const std::string what = "orphan inode " + std::to_string(ino);
  if (ext2fs_inode_has_valid_blocks2(fs, in) || (inode.i_flags & EXT4_INLINE_DATA_FL)) {
    const blk64_t start = deleted ? 0 : div_round_up(EXT2_I_SIZE(&inode), fs->blocksize);
    errcode_t err = ext2fs_punch(fs, ino, in, buf.data(), start, ~0ULL);
    if (err) return ext2_status(fs, err, what + ": releasing its blocks");
    // The kernel zeroes the tail of a partly used last block, so a later extension reads zeros.
    const uint64_t tail = EXT2_I_SIZE(&inode) % fs->blocksize;
    if (!deleted && tail && !(inode.i_flags & EXT4_INLINE_DATA_FL)) {
      blk64_t phys = 0;
      int ret_flags = 0;
      err = ext2fs_bmap2(fs, ino, in, buf.data(), 0, start - 1, &ret_flags, &phys);
      if (err) return ext2_status(fs, err, what + ": mapping its last block");
      if (phys && !(ret_flags & BMAP_RET_UNINIT)) {
        std::vector<char> blk(fs->blocksize);
        err = io_channel_read_blk64(fs->io, phys, 1, blk.data());
        if (!err) {
          std::memset(blk.data() + tail, 0, fs->blocksize - tail);
          err = io_channel_write_blk64(fs->io, phys, 1, blk.data());
        }
        if (err) return ext2_status(fs, err, what + ": zeroing past its end");
      }
    }
  }
  if (deleted) {
    blk64_t ea = ext2fs_file_acl_block(fs, in);
    if (ea) {
      __u32 count = 0;
      errcode_t err = ext2fs_adjust_ea_refcount3(fs, ea, buf.data(), -1, &count, ino);
      if (err) return ext2_status(fs, err, what + ": dropping its extended-attribute block " + std::to_string(ea));
      if (count == 0) ext2fs_block_alloc_stats2(fs, ea, -1);
      ext2fs_file_acl_block_set(fs, in, 0);
    }
    inode.i_dtime = static_cast<uint32_t>(time(nullptr));
    ext2fs_inode_alloc_stats2(fs, ino, -1, LINUX_S_ISDIR(inode.i_mode));
  } else {
    inode.i_dtime = 0;  // it held the next orphan's number
  }
  errcode_t err = ext2fs_write_inode_full(fs, ino, in, sizeof inode);
  if (err) return ext2_status(fs, err, what + ": writing it");
  return Status::Ok();
}

// The orphan list: s_last_orphan, linked through i_dtime.
Status process_orphans(ext2_filsys fs, JournalReport& r) {
  ext2_super_block* s = fs->super;
  ext2_ino_t ino = s->s_last_orphan;
  if (!ino) return Status::Ok();
  errcode_t err = ext2fs_read_bitmaps(fs);
  if (err) return ext2_status(fs, err, "reading the bitmaps for the orphan list");
  uint64_t seen = 0;
  while (ino) {
    if (ino < EXT2_FIRST_INODE(s) || ino > s->s_inodes_count)
      return Status::Corrupt("orphan list: inode " + std::to_string(ino) + " is not a valid orphan (first " +
                             std::to_string(EXT2_FIRST_INODE(s)) + ", last " + std::to_string(s->s_inodes_count) + ")");
    if (++seen > s->s_inodes_count) return Status::Corrupt("orphan list: it loops");
    ext2_inode_large inode;
    err = ext2fs_read_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode);
    if (err) return ext2_status(fs, err, "reading orphan inode " + std::to_string(ino));
    const ext2_ino_t next = inode.i_dtime;
    bool deleted = false;
    VDKIT_RETURN_IF_ERROR(release_orphan(fs, ino, inode, deleted));
    ++(deleted ? r.orphans_deleted : r.orphans_truncated);
    ino = next;
  }
  s->s_last_orphan = 0;
  ext2fs_mark_super_dirty(fs);
  return Status::Ok();
}

// The superblock's free counts are not journaled and lag behind the replayed group descriptors; the kernel sums
// the groups at mount, and so does this.
void sum_free_counts(ext2_filsys fs) {
  uint64_t blocks = 0, inodes = 0;
  for (dgrp_t g = 0; g < fs->group_desc_count; ++g) {
    blocks += ext2fs_bg_free_blocks_count(fs, g);
    inodes += ext2fs_bg_free_inodes_count(fs, g);
  }
  ext2fs_free_blocks_count_set(fs->super, blocks);
  fs->super->s_free_inodes_count = static_cast<uint32_t>(inodes);
  ext2fs_mark_super_dirty(fs);
}

}  // namespace

std::string JournalReport::state() const {
  if (!has_journal) return "none";
  if (external) return "external";
  if (replayed) return not_replayed.empty() ? "replayed" : "replayed-partly";
  return needs_recovery ? "needs-recovery" : "clean";
}

std::string JournalReport::summary() const {
  if (!has_journal) return "no journal";
  if (external) return "external journal (not read)" + std::string(needs_recovery ? ", needs recovery" : "");
  std::string s = "journal v" + std::to_string(version) + " (checksum " + checksum + ")";
  if (!replayed) return s + (needs_recovery ? ": needs recovery" : ": clean");
  s += ": replayed " + std::to_string(transactions) + " transaction" + (transactions == 1 ? "" : "s") + ", " +
       std::to_string(blocks) + " block" + (blocks == 1 ? "" : "s");
  if (revoked) s += " (" + std::to_string(revoked) + " revoked)";
  const uint32_t orphans = orphans_deleted + orphans_truncated;
  s += ", " + std::to_string(orphans) + " orphan" + (orphans == 1 ? "" : "s") + " processed";
  if (orphans)
    s += " (" + std::to_string(orphans_deleted) + " freed, " + std::to_string(orphans_truncated) + " truncated)";
  if (!not_replayed.empty()) s += "; NOT replayed from " + not_replayed;
  if (recorded_error) s += "; the journal recorded error " + std::to_string(recorded_error);
  return s;
}

Result<JournalReport> read_journal_state(std::shared_ptr<BlockDevice> dev) {
  ScopedFs f;
  VDKIT_RETURN_IF_ERROR(f.Open(std::move(dev), false));
  JournalReport r;
  VDKIT_RETURN_IF_ERROR(read_state(f.fs(), r, nullptr));
  return r;
}

Result<JournalReport> replay_journal(std::shared_ptr<BlockDevice> dev) {
  if (!dev->caps().writable) return Status::Error(EROFS, "replaying the journal: the device is read-only");
  JournalReport r;
  JournalLocation loc;
  ReplayPlan plan;
  uint32_t block_size = 0;
  {
    ScopedFs f;
    VDKIT_RETURN_IF_ERROR(f.Open(dev, false));
    ext2_filsys fs = f.fs();
    block_size = fs->blocksize;
    VDKIT_RETURN_IF_ERROR(read_state(fs, r, &loc));
    if (!r.needs_recovery) return r;
    if (r.external)
      return Status::Unsupported("the journal needs recovery but lives on another device, which vdkit does not read");
    if (ext2fs_has_feature_orphan_present(fs->super))
      return Status::Unsupported("the file system's orphan file holds inodes, which vdkit does not process");
    LogBlockReader read = [&](uint32_t log_block, std::span<uint8_t> out) -> Status {
      errcode_t err = io_channel_read_blk64(fs->io, loc.physical[log_block], 1, out.data());
      return err ? ext2_status(fs, err, "reading the journal") : Status::Ok();
    };
    VDKIT_ASSIGN_OR_RETURN(plan, plan_journal_replay(loc.sb, ext2fs_blocks_count(fs->super), read));
  }
  // Copy the blocks, in log order so a later transaction's copy of a block wins.
  std::vector<uint8_t> buf(block_size);
  for (const LogWrite& w : plan.writes) {
    const uint64_t from = loc.physical[w.log_block] * block_size;
    VDKIT_RETURN_IF_ERROR(dev->read(from, buf).Context("reading journal block " + std::to_string(w.log_block)));
    if (w.escaped) store_be32(buf.data(), kJbd2Magic);
    VDKIT_RETURN_IF_ERROR(
        dev->write(w.fs_block * block_size, buf).Context("replaying block " + std::to_string(w.fs_block)));
  }
  r.replayed = true;
  r.transactions = plan.transactions;
  r.blocks = plan.writes.size();
  r.revoked = plan.revoked;
  r.not_replayed = plan.stopped;
  r.recorded_error = loc.sb.error;
  // The journal is empty now; its next transaction follows the last one the log could have held.
  mark_journal_empty(loc.super_block, loc.sb, plan.end_sequence + 1);
  VDKIT_RETURN_IF_ERROR(dev->write(loc.physical[0] * block_size, loc.super_block)
                            .Context("writing the journal "
                                     "superblock"));
  // The file system as replayed (its superblock may have come from the log): clear the flag, finish the orphans.
  ScopedFs f;
  VDKIT_RETURN_IF_ERROR(f.Open(dev, true).Context("reopening after the replay"));
  ext2_filsys fs = f.fs();
  ext2fs_clear_feature_journal_needs_recovery(fs->super);
  if (r.recorded_error) fs->super->s_state |= EXT2_ERROR_FS;
  ext2fs_mark_super_dirty(fs);
  VDKIT_RETURN_IF_ERROR(process_orphans(fs, r));
  sum_free_counts(fs);
  VDKIT_RETURN_IF_ERROR(f.Close());
  return r;
}

}  // namespace vdkit::ext2
