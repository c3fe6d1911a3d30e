// The jbd2 scan on journals built in memory: transaction ids that wrap at 2^32, a revoke in a later transaction,
// a tag naming a block outside the file system, a descriptor with no commit, and checksum v3 failures. Real
// journals (debugfs's and the kernel's) are checked against e2fsck in journal_replay_test.cc.
#include "guestfs/ext2/journal_format.h"

#include <ext2fs/ext2fs.h>
#include <gtest/gtest.h>

#include <cstring>

#include "blockcore/base/bytes.h"

namespace vdkit::ext2 {
namespace {

constexpr uint32_t kBs = 1024, kLen = 64;

// A journal of kLen blocks of kBs bytes; block 0 is a v2 superblock.
class Journal {
 public:
  explicit Journal(uint32_t incompat = 0, uint32_t sequence = 1) : data_(kBs * kLen, 0) {
    uint8_t* s = data_.data();
    store_be32(s, kJbd2Magic);
    store_be32(s + 4, kJbd2SuperV2);
    store_be32(s + 0xC, kBs);
    store_be32(s + 0x10, kLen);
    store_be32(s + 0x14, 1);
    store_be32(s + 0x18, sequence);
    store_be32(s + 0x1C, 1);
    store_be32(s + 0x28, incompat);
    for (int i = 0; i < 16; ++i) s[0x30 + i] = static_cast<uint8_t>(i + 1);
    if (incompat & kJbd2IncompatCsumV3) {
      s[0x50] = 4;
      store_be32(s + 0xFC, ext2fs_crc32c_le(~0u, s, kJbd2SuperblockBytes));
    }
    csum_ = incompat & kJbd2IncompatCsumV3;
    seed_ = ext2fs_crc32c_le(~0u, s + 0x30, 16);
  }
  // A descriptor for `targets`, then one data block per target filled with `fill`, in transaction seq.
  void descriptor(uint32_t seq, std::vector<uint64_t> targets, uint8_t fill) {
    uint8_t* d = block(next_);
    header(d, kJbd2Descriptor, seq);
    const uint32_t tag = csum_ ? 16 : 8;
    size_t off = 12;
    ++next_;
    for (size_t i = 0; i < targets.size(); ++i) {
      uint8_t* t = d + off;
      store_be32(t, static_cast<uint32_t>(targets[i]));
      uint32_t flags = (i ? 0x2 : 0) | (i + 1 == targets.size() ? 0x8 : 0);
      uint8_t* data = block(next_++);
      std::memset(data, fill, kBs);
      if (csum_) {
        store_be32(t + 4, flags);
        uint8_t be[4];
        store_be32(be, seq);
        store_be32(t + 12, ext2fs_crc32c_le(ext2fs_crc32c_le(seed_, be, 4), data, kBs));
      } else {
        store_be16(t + 6, static_cast<uint16_t>(flags));
      }
      off += tag + (i ? 0 : 16);
    }
    if (csum_) store_be32(d + kBs - 4, ext2fs_crc32c_le(seed_, d, kBs));  // tail was zero while summing
  }
  void revoke(uint32_t seq, uint64_t target) {
    uint8_t* r = block(next_++);
    header(r, kJbd2Revoke, seq);
    store_be32(r + 12, 16 + 4);
    store_be32(r + 16, static_cast<uint32_t>(target));
    if (csum_) store_be32(r + kBs - 4, ext2fs_crc32c_le(seed_, r, kBs));
  }
  void commit(uint32_t seq) {
    uint8_t* c = block(next_++);
    header(c, kJbd2Commit, seq);
    if (csum_) store_be32(c + 0x10, ext2fs_crc32c_le(seed_, c, kBs));
  }
  uint8_t* block(uint32_t b) { return data_.data() + uint64_t(b) * kBs; }

  Result<ReplayPlan> plan(uint64_t fs_blocks = 1000) {
    VDKIT_ASSIGN_OR_RETURN(JournalSuperblock sb, parse_journal_superblock(data_, kLen, kBs));
    return plan_journal_replay(sb, fs_blocks, [&](uint32_t b, std::span<uint8_t> out) {
      std::memcpy(out.data(), block(b), kBs);
      return Status::Ok();
    });
  }

 private:
  static void header(uint8_t* p, uint32_t type, uint32_t seq) {
    store_be32(p, kJbd2Magic);
    store_be32(p + 4, type);
    store_be32(p + 8, seq);
  }
  std::vector<uint8_t> data_;
  uint32_t next_ = 1;
  bool csum_ = false;
  uint32_t seed_ = 0;
};

TEST(JournalFormat, TransactionIdsWrapAndARevokeInTheNextOneWins) {
  Journal j(0, 0xffffffffu);
  j.descriptor(0xffffffffu, {100, 101}, 0xaa);
  j.commit(0xffffffffu);
  j.revoke(0, 101);
  j.descriptor(0, {102}, 0xbb);
  j.commit(0);
  auto p = j.plan();
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->transactions, 2u);
  EXPECT_EQ(p->end_sequence, 1u);
  EXPECT_TRUE(p->stopped.empty()) << p->stopped;
  ASSERT_EQ(p->writes.size(), 2u);
  EXPECT_EQ(p->writes[0].fs_block, 100u);
  EXPECT_EQ(p->writes[1].fs_block, 102u);
  EXPECT_EQ(p->revoked, 1u);
}

TEST(JournalFormat, AnUncommittedTransactionIsLeftOutQuietly) {
  Journal j;
  j.descriptor(1, {100}, 1);
  j.commit(1);
  j.descriptor(2, {101}, 2);  // the crash came before its commit block
  auto p = j.plan();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->transactions, 1u);
  EXPECT_EQ(p->writes.size(), 1u);
  EXPECT_TRUE(p->stopped.empty());
}

TEST(JournalFormat, ATagOutsideTheFileSystemStopsTheScanBeforeItsTransaction) {
  Journal j;
  j.descriptor(1, {100}, 1);
  j.commit(1);
  j.descriptor(2, {5000}, 2);
  j.commit(2);
  auto p = j.plan(1000);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->transactions, 1u);
  EXPECT_EQ(p->writes.size(), 1u);
  EXPECT_NE(p->stopped.find("transaction 2"), std::string::npos) << p->stopped;
  EXPECT_NE(p->stopped.find("5000"), std::string::npos) << p->stopped;
}

TEST(JournalFormat, ChecksumV3FailuresAreCaughtPerBlockKind) {
  for (int victim = 0; victim < 3; ++victim) {
    Journal j(kJbd2IncompatCsumV3 | kJbd2Incompat64Bit);
    j.descriptor(1, {100}, 1);
    j.commit(1);
    j.descriptor(2, {101}, 2);  // blocks 4 (descriptor), 5 (data), 6 (commit)
    j.commit(2);
    {
      auto p = j.plan();
      ASSERT_TRUE(p.ok()) << p.status().message();
      ASSERT_EQ(p->transactions, 2u) << p->stopped;
    }
    j.block(4 + victim)[200] ^= 1;
    auto p = j.plan();
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->transactions, 1u) << victim;
    EXPECT_EQ(p->writes.size(), 1u) << victim;
    EXPECT_NE(p->stopped.find("checksum"), std::string::npos) << p->stopped;
  }
}

TEST(JournalFormat, TheSuperblockIsCheckedFieldByField) {
  Journal j(kJbd2IncompatCsumV3);
  j.block(0)[0x20] = 1;  // s_errno changed without its checksum
  auto p = j.plan();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("s_checksum"), std::string::npos) << p.status().message();
  Journal k(0x400);  // an incompatible feature nobody knows
  p = k.plan();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("s_feature_incompat"), std::string::npos) << p.status().message();
  Journal f(kJbd2IncompatFastCommit);
  f.descriptor(1, {100}, 1);
  f.commit(1);
  p = f.plan();
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("fast commits"), std::string::npos) << p.status().message();
}

}  // namespace
}  // namespace vdkit::ext2
