// The jbd2 recovery scan: superblock checks, then the kernel's scan/revoke/replay passes as one walk per pass that
// only reads (see journal_format.h). Offsets and rules follow Documentation/filesystems/ext4/journal.rst.
#include "guestfs/ext2/journal_format.h"

#include <ext2fs/ext2fs.h>

#include <cstring>
#include <unordered_map>

#include "blockcore/base/bytes.h"

namespace vdkit::ext2 {
namespace {

// Common header.
constexpr size_t kHdrMagic = 0x0, kHdrType = 0x4, kHdrSequence = 0x8, kHdrBytes = 12;
// Superblock fields.
constexpr size_t kSbBlockSize = 0xC, kSbMaxLen = 0x10, kSbFirst = 0x14, kSbSequence = 0x18, kSbStart = 0x1C,
                 kSbErrno = 0x20, kSbCompat = 0x24, kSbIncompat = 0x28, kSbRoCompat = 0x2C, kSbUuid = 0x30,
                 kSbChecksumType = 0x50, kSbFastCommitBlocks = 0x54, kSbChecksum = 0xFC;
// Commit block: h_chksum_type, h_chksum_size, h_chksum[0].
constexpr size_t kCommitSumType = 0xC, kCommitSumSize = 0xD, kCommitSum = 0x10;
constexpr uint8_t kCrc32SumType = 1, kCrc32SumSize = 4;
constexpr uint8_t kCrc32cChecksumType = 4;  // s_checksum_type for v2/v3
// Revoke block: r_count, the bytes used including this header.
constexpr size_t kRevokeCount = 0xC, kRevokeHeaderBytes = 16;
// Tag flags.
constexpr uint32_t kTagEscape = 0x1, kTagSameUuid = 0x2, kTagLast = 0x8;
constexpr size_t kUuidBytes = 16, kTailBytes = 4;

uint32_t crc32c(uint32_t seed, const uint8_t* p, size_t n) { return ext2fs_crc32c_le(seed, p, n); }

uint32_t superblock_checksum(std::span<const uint8_t> block) {
  uint8_t copy[kJbd2SuperblockBytes];
  std::memcpy(copy, block.data(), sizeof copy);
  store_be32(copy + kSbChecksum, 0);
  return crc32c(~0u, copy, sizeof copy);
}

// crc32c(seed, whole block) with the 4 bytes at `field` taken as zero: descriptor and revoke tails, commit blocks.
uint32_t block_checksum(uint32_t seed, std::span<const uint8_t> block, size_t field) {
  uint32_t c = crc32c(seed, block.data(), field);
  const uint8_t zero[4] = {};
  c = crc32c(c, zero, 4);
  return crc32c(c, block.data() + field + 4, block.size() - field - 4);
}

// Transaction ids wrap at 2^32; the kernel compares them as a signed difference.
bool tid_geq(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }

// Walks the log from sb.start. Each pass is one walk; the scan pass decides where the others stop.
class LogWalker {
 public:
  LogWalker(const JournalSuperblock& sb, uint64_t fs_blocks, const LogBlockReader& read)
      : sb_(sb), fs_blocks_(fs_blocks), read_(read), block_(sb.block_size), data_(sb.block_size) {
    seed_ = crc32c(~0u, sb.uuid, kUuidBytes);
    last_ = sb.max_len;  // fast-commit areas are refused before a walk, so the log runs to the journal's end
    tail_ = sb.csum_v2or3() ? kTailBytes : 0;
  }

  Result<ReplayPlan> Run() {
    ReplayPlan plan;
    plan.first_sequence = sb_.sequence;
    VDKIT_RETURN_IF_ERROR(Pass(kScan, plan));
    VDKIT_RETURN_IF_ERROR(Pass(kRevoke, plan));
    VDKIT_RETURN_IF_ERROR(Pass(kReplay, plan));
    return plan;
  }

 private:
  enum PassKind { kScan, kRevoke, kReplay };

  uint32_t Next(uint32_t b) const { return b + 1 >= last_ ? sb_.first : b + 1; }

  Status Read(uint32_t log_block, std::vector<uint8_t>& buf) {
    Status st = read_(log_block, buf);
    if (!st.ok()) return st.Context("reading journal block " + std::to_string(log_block));
    return Status::Ok();
  }

  // Scan-pass failure: the transaction being read and everything after it stay out of the plan.
  Status Stop(ReplayPlan& plan, uint32_t seq, uint32_t log_block, const std::string& why) {
    plan.end_sequence = seq;
    plan.stopped = "transaction " + std::to_string(seq) + " (log block " + std::to_string(log_block) + "): " + why;
    return Status::Ok();
  }

  Status Pass(PassKind pass, ReplayPlan& plan) {
    uint32_t seq = sb_.sequence;
    uint32_t pos = sb_.start;
    // Every block of the log is visited at most once per pass: a log that claims more is corrupt, and the bound
    // keeps a crafted one from looping.
    uint64_t budget = last_ - sb_.first;
    uint32_t v1_sum = ~0u;  // checksum v1: crc32_be over the transaction's descriptor and data blocks
    while (true) {
      if (pass != kScan && seq == plan.end_sequence) return Status::Ok();
      if (budget == 0) {
        if (pass == kScan) return Stop(plan, seq, pos, "the log wraps past its own start (corrupt)");
        return Status::Ok();
      }
      const uint32_t here = pos;
      VDKIT_RETURN_IF_ERROR(Read(here, block_));
      --budget;
      pos = Next(pos);
      if (load_be32(block_.data() + kHdrMagic) != kJbd2Magic || load_be32(block_.data() + kHdrSequence) != seq) {
        // The end of the log. Only the scan pass may find it; the others stop at the scan's end first.
        if (pass == kScan) plan.end_sequence = seq;
        return Status::Ok();
      }
      const uint32_t type = load_be32(block_.data() + kHdrType);
      if (type == kJbd2Descriptor) {
        if (tail_ && pass == kScan &&
            load_be32(block_.data() + sb_.block_size - kTailBytes) !=
                block_checksum(seed_, block_, sb_.block_size - kTailBytes))
          return Stop(plan, seq, here, "descriptor block checksum does not match");
        if (pass == kScan && sb_.csum_v1()) v1_sum = ext2fs_crc32_be(v1_sum, block_.data(), sb_.block_size);
        // Tags: one per following log block. The descriptor is copied because data blocks reuse the buffer.
        std::vector<uint8_t> desc = block_;
        const uint32_t tag_bytes = sb_.tag_bytes();
        const size_t limit = sb_.block_size - tail_;
        size_t off = kHdrBytes;
        while (off + tag_bytes <= limit) {
          const uint8_t* t = desc.data() + off;
          const uint32_t flags = load_be16(t + 6);  // also the low half of tag3's 32-bit t_flags
          uint64_t target = load_be32(t);
          if (sb_.has_64bit()) target |= static_cast<uint64_t>(load_be32(t + 8)) << 32;
          const uint32_t data_block = pos;
          if (budget == 0) {
            if (pass == kScan) return Stop(plan, seq, here, "descriptor names more blocks than the log holds");
            return Status::Ok();
          }
          --budget;
          pos = Next(pos);
          if (pass == kScan) {
            if (target >= fs_blocks_)
              return Stop(plan, seq, here,
                          "tag names file-system block " + std::to_string(target) + ", past the last block " +
                              std::to_string(fs_blocks_ - 1));
            if (sb_.csum_v2or3() || sb_.csum_v1()) {
              VDKIT_RETURN_IF_ERROR(Read(data_block, data_));
              if (sb_.csum_v1()) v1_sum = ext2fs_crc32_be(v1_sum, data_.data(), sb_.block_size);
              if (sb_.csum_v2or3()) {
                uint8_t be_seq[4];
                store_be32(be_seq, seq);
                uint32_t c = crc32c(crc32c(seed_, be_seq, 4), data_.data(), sb_.block_size);
                bool ok =
                    (sb_.incompat & kJbd2IncompatCsumV3) ? load_be32(t + 12) == c : load_be16(t + 4) == (c & 0xffff);
                if (!ok)
                  return Stop(plan, seq, here,
                              "checksum of the copy of file-system block " + std::to_string(target) + " (log block " +
                                  std::to_string(data_block) + ") does not match");
              }
            }
          } else if (pass == kReplay) {
            if (revoked_at(target, seq))
              ++plan.revoked;
            else
              plan.writes.push_back({target, data_block, (flags & kTagEscape) != 0});
          }
          off += tag_bytes;
          if (!(flags & kTagSameUuid)) off += kUuidBytes;
          if (flags & kTagLast) break;
        }
        continue;
      }
      if (type == kJbd2Commit) {
        if (pass == kScan) {
          if (tail_ && load_be32(block_.data() + kCommitSum) != block_checksum(seed_, block_, kCommitSum))
            return Stop(plan, seq, here, "commit block checksum does not match");
          if (sb_.csum_v1()) {
            const uint8_t type8 = block_[kCommitSumType], size8 = block_[kCommitSumSize];
            const uint32_t found = load_be32(block_.data() + kCommitSum);
            // A commit block with no checksum at all is accepted, as the kernel does (written before the feature).
            const bool none = type8 == 0 && size8 == 0 && found == 0;
            if (!none && !(type8 == kCrc32SumType && size8 == kCrc32SumSize && found == v1_sum))
              return Stop(plan, seq, here, "transaction checksum (v1) in the commit block does not match");
          }
          ++plan.transactions;
        }
        v1_sum = ~0u;
        ++seq;
        continue;
      }
      if (type == kJbd2Revoke) {
        if (pass == kScan && tail_ &&
            load_be32(block_.data() + sb_.block_size - kTailBytes) !=
                block_checksum(seed_, block_, sb_.block_size - kTailBytes))
          return Stop(plan, seq, here, "revoke block checksum does not match");
        const uint32_t used = load_be32(block_.data() + kRevokeCount);
        const uint32_t rec = sb_.has_64bit() ? 8 : 4;
        if (used < kRevokeHeaderBytes || used > sb_.block_size - tail_ || (used - kRevokeHeaderBytes) % rec) {
          if (pass == kScan)
            return Stop(plan, seq, here, "revoke block says it uses " + std::to_string(used) + " bytes");
          return Status::Ok();
        }
        for (size_t off = kRevokeHeaderBytes; off < used; off += rec) {
          uint64_t b = rec == 8 ? load_be64(block_.data() + off) : load_be32(block_.data() + off);
          if (pass == kScan && b >= fs_blocks_)
            return Stop(plan, seq, here,
                        "revoke record names file-system block " + std::to_string(b) + ", past the last block");
          if (pass == kRevoke) {
            auto [it, fresh] = revokes_.try_emplace(b, seq);
            if (!fresh && !tid_geq(it->second, seq)) it->second = seq;
          }
        }
        continue;
      }
      // A superblock or unknown type with a matching magic and sequence: the kernel takes it as the log's end.
      if (pass == kScan) plan.end_sequence = seq;
      return Status::Ok();
    }
  }

  // Revoked: a revoke record for the block from this transaction or a later one.
  bool revoked_at(uint64_t block, uint32_t seq) const {
    auto it = revokes_.find(block);
    return it != revokes_.end() && tid_geq(it->second, seq);
  }

  const JournalSuperblock& sb_;
  uint64_t fs_blocks_;
  const LogBlockReader& read_;
  std::vector<uint8_t> block_, data_;
  uint32_t seed_ = 0;
  uint32_t last_ = 0;
  size_t tail_ = 0;
  std::unordered_map<uint64_t, uint32_t> revokes_;  // block -> latest revoking transaction
};

}  // namespace

const char* JournalSuperblock::checksum_name() const {
  if (incompat & kJbd2IncompatCsumV3) return "v3";
  if (incompat & kJbd2IncompatCsumV2) return "v2";
  if (compat & kJbd2CompatChecksum) return "v1";
  return "none";
}

uint32_t JournalSuperblock::tag_bytes() const {
  if (incompat & kJbd2IncompatCsumV3) return 16;  // blocknr, flags, blocknr_high, checksum: 32 bits each
  uint32_t n = 12;                                // blocknr, checksum (16), flags (16), blocknr_high
  if (incompat & kJbd2IncompatCsumV2) n += 2;     // as the kernel counts it: 2 more bytes than the struct
  return has_64bit() ? n : n - 4;
}

Result<JournalSuperblock> parse_journal_superblock(std::span<const uint8_t> b, uint64_t journal_blocks,
                                                   uint32_t fs_block_size) {
  if (b.size() < kJbd2SuperblockBytes) return Status::Corrupt("journal superblock: shorter than 1024 bytes");
  auto field = [](const char* name) { return std::string("journal superblock field ") + name + ": "; };
  if (load_be32(b.data() + kHdrMagic) != kJbd2Magic)
    return Status::Corrupt(field("h_magic") + "not the jbd2 magic 0xC03B3998");
  JournalSuperblock sb;
  const uint32_t type = load_be32(b.data() + kHdrType);
  if (type == kJbd2SuperV1)
    sb.version = 1;
  else if (type == kJbd2SuperV2)
    sb.version = 2;
  else
    return Status::Corrupt(field("h_blocktype") + std::to_string(type) + " is not a journal superblock (3 or 4)");
  sb.block_size = load_be32(b.data() + kSbBlockSize);
  sb.max_len = load_be32(b.data() + kSbMaxLen);
  sb.first = load_be32(b.data() + kSbFirst);
  sb.sequence = load_be32(b.data() + kSbSequence);
  sb.start = load_be32(b.data() + kSbStart);
  sb.error = static_cast<int32_t>(load_be32(b.data() + kSbErrno));
  if (sb.version == 2) {
    sb.compat = load_be32(b.data() + kSbCompat);
    sb.incompat = load_be32(b.data() + kSbIncompat);
    sb.ro_compat = load_be32(b.data() + kSbRoCompat);
    std::memcpy(sb.uuid, b.data() + kSbUuid, kUuidBytes);
    sb.checksum_type = b[kSbChecksumType];
    sb.fast_commit_blocks = load_be32(b.data() + kSbFastCommitBlocks);
  }
  if (sb.block_size != fs_block_size)
    return Status::Corrupt(field("s_blocksize") + std::to_string(sb.block_size) +
                           " differs from the file system's block size " + std::to_string(fs_block_size));
  if (sb.max_len < 2 || sb.max_len > journal_blocks || sb.max_len > kMaxJournalBlocks)
    return Status::Corrupt(field("s_maxlen") + std::to_string(sb.max_len) + " blocks: the journal holds " +
                           std::to_string(journal_blocks) + " (at most " + std::to_string(kMaxJournalBlocks) + ")");
  if (sb.first == 0 || sb.first >= sb.max_len)
    return Status::Corrupt(field("s_first") + std::to_string(sb.first) + " is outside the journal");
  if (sb.start != 0 && (sb.start < sb.first || sb.start >= sb.max_len))
    return Status::Corrupt(field("s_start") + std::to_string(sb.start) + " is outside the log");
  if (sb.incompat & ~kJbd2IncompatKnown)
    return Status::Unsupported(field("s_feature_incompat") + "unknown features " +
                               hex(sb.incompat & ~kJbd2IncompatKnown));
  if ((sb.incompat & kJbd2IncompatCsumV2) && (sb.incompat & kJbd2IncompatCsumV3))
    return Status::Corrupt(field("s_feature_incompat") + "both checksum v2 and v3");
  if (sb.csum_v2or3()) {
    if (sb.checksum_type != kCrc32cChecksumType)
      return Status::Corrupt(field("s_checksum_type") + std::to_string(sb.checksum_type) + " is not crc32c (4)");
    if (load_be32(b.data() + kSbChecksum) != superblock_checksum(b))
      return Status::Corrupt(field("s_checksum") + "does not match the superblock");
  }
  return sb;
}

void mark_journal_empty(std::span<uint8_t> b, const JournalSuperblock& sb, uint32_t next_sequence) {
  store_be32(b.data() + kSbStart, 0);
  store_be32(b.data() + kSbSequence, next_sequence);
  store_be32(b.data() + kSbErrno, 0);  // the error moves to the file system's state, as e2fsck moves it
  if (sb.csum_v2or3()) store_be32(b.data() + kSbChecksum, superblock_checksum(b));
}

Result<ReplayPlan> plan_journal_replay(const JournalSuperblock& sb, uint64_t fs_blocks, const LogBlockReader& read) {
  if (sb.start == 0) {
    ReplayPlan empty;
    empty.first_sequence = empty.end_sequence = sb.sequence;
    return empty;
  }
  if (sb.incompat & kJbd2IncompatFastCommit)
    return Status::Unsupported(
        "the journal uses fast commits, whose replay vdkit does not implement; run e2fsck -E journal_only on a "
        "copy");
  return LogWalker(sb, fs_blocks, read).Run();
}

}  // namespace vdkit::ext2
