// The jbd2 journal of ext3/ext4 as it lies on disk, and the recovery scan over it: which transactions are complete
// and which file-system blocks they rewrite. Written from the kernel's description of the format
// (Documentation/filesystems/ext4/journal.rst): big-endian superblock v1/v2, descriptor blocks with 32- or 64-bit
// tags, commit blocks, revoke blocks, checksums v1 (crc32 over a transaction), v2 and v3 (crc32c per block).
//
// This file only reads: it takes the journal superblock and a reader of log blocks and returns a ReplayPlan. The
// applier (journal_replay.h) writes the plan into a device. Keeping them apart lets the fuzz harness drive the
// parser with nothing but bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::ext2 {

inline constexpr uint32_t kJbd2Magic = 0xC03B3998;
inline constexpr uint32_t kJbd2SuperblockBytes = 1024;
// The log may hold no more blocks than this (a 1 GiB journal of 1 KiB blocks); bounds the plan's memory.
inline constexpr uint32_t kMaxJournalBlocks = 1u << 20;

// Block types in the common header.
enum Jbd2BlockType : uint32_t {
  kJbd2Descriptor = 1,
  kJbd2Commit = 2,
  kJbd2SuperV1 = 3,
  kJbd2SuperV2 = 4,
  kJbd2Revoke = 5,
};

// Feature bits (v2 superblocks only).
inline constexpr uint32_t kJbd2CompatChecksum = 0x1;  // checksum v1: crc32 of a transaction in its commit block
inline constexpr uint32_t kJbd2IncompatRevoke = 0x1;
inline constexpr uint32_t kJbd2Incompat64Bit = 0x2;
inline constexpr uint32_t kJbd2IncompatAsyncCommit = 0x4;
inline constexpr uint32_t kJbd2IncompatCsumV2 = 0x8;
inline constexpr uint32_t kJbd2IncompatCsumV3 = 0x10;
inline constexpr uint32_t kJbd2IncompatFastCommit = 0x20;
inline constexpr uint32_t kJbd2IncompatKnown = 0x3f;

struct JournalSuperblock {
  int version = 0;  // 1 or 2
  uint32_t block_size = 0;
  uint32_t max_len = 0;   // blocks in the journal, the superblock included
  uint32_t first = 0;     // first log block
  uint32_t sequence = 0;  // first transaction expected in the log
  uint32_t start = 0;     // first block of the log; 0 when the journal is empty (nothing to recover)
  int32_t error = 0;      // s_errno: an error the file system recorded through the journal
  uint32_t compat = 0, incompat = 0, ro_compat = 0;
  uint8_t uuid[16] = {};
  uint8_t checksum_type = 0;
  uint32_t fast_commit_blocks = 0;

  bool has_64bit() const { return incompat & kJbd2Incompat64Bit; }
  bool csum_v2or3() const { return incompat & (kJbd2IncompatCsumV2 | kJbd2IncompatCsumV3); }
  bool csum_v1() const { return compat & kJbd2CompatChecksum; }
  // "none", "v1", "v2" or "v3": what protects the log.
  const char* checksum_name() const;
  // Bytes of one descriptor tag (without the 16-byte UUID that follows a tag lacking SAME_UUID).
  uint32_t tag_bytes() const;
};

// Parses the journal superblock from the journal's block 0 (at least kJbd2SuperblockBytes). Refuses what recovery
// cannot handle, naming the field: bad magic or type, sizes outside the journal, unknown incompatible features,
// both checksum versions, a v2/v3 superblock whose checksum does not match. journal_blocks: how many blocks the
// journal inode (or device) holds; fs_block_size: the file system's block size, which the journal must share.
Result<JournalSuperblock> parse_journal_superblock(std::span<const uint8_t> block, uint64_t journal_blocks,
                                                   uint32_t fs_block_size);

// Writes back what recovery changes in the superblock (an empty log starting at `next_sequence`, no recorded
// error), with its checksum.
void mark_journal_empty(std::span<uint8_t> block, const JournalSuperblock& sb, uint32_t next_sequence);

// One block to copy from the log to the file system.
struct LogWrite {
  uint64_t fs_block = 0;
  uint32_t log_block = 0;
  bool escaped = false;  // the block began with the jbd2 magic, which the log replaced by zeros
};

struct ReplayPlan {
  uint32_t first_sequence = 0;  // transactions [first_sequence, end_sequence) are complete and replayed
  uint32_t end_sequence = 0;
  uint32_t transactions = 0;
  std::vector<LogWrite> writes;  // in log order (a later write of a block wins); revoked ones are left out
  uint64_t revoked = 0;          // tags skipped because a later revoke record covers them
  // Empty when the scan ended where the log ends (the next block is not the next transaction's). Otherwise why
  // transaction end_sequence and whatever follows it were not replayed: a checksum that does not match, a tag
  // naming a block outside the file system, a record that does not fit its block.
  std::string stopped;
};

// Reads log block `log_block` (an index into the journal, < max_len) into `out` (block_size bytes).
using LogBlockReader = std::function<Status(uint32_t log_block, std::span<uint8_t> out)>;

// The kernel's three passes (scan, revoke, replay), minus the writes: finds the complete transactions from
// sb.start/sb.sequence on, checking every checksum the journal carries, collects revoke records, and lists the
// blocks to copy. A transaction that fails a check ends the scan: it and all later ones are left out and `stopped`
// says why, so a plan is always a whole number of transactions, never part of one. fs_blocks: blocks in the file
// system (tags and revoke records beyond it fail the check). Errors only when a log block cannot be read or the
// journal asks for recovery it does not support (fast commits).
Result<ReplayPlan> plan_journal_replay(const JournalSuperblock& sb, uint64_t fs_blocks, const LogBlockReader& read);

}  // namespace vdkit::ext2
