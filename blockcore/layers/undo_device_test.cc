// Tests for UndoDevice: rollback restores every byte after random overlapping writes, torn writes and failures.
#include "blockcore/layers/undo_device.h"

#include <gtest/gtest.h>

#include <random>

#include "blockcore/testing/memory_device.h"

namespace vdkit {
namespace {

// Random bytes; a failing write lands nothing unless a test sets torn_keep.
std::shared_ptr<MemoryDevice> make_disk(uint64_t size) {
  std::vector<uint8_t> bytes(size);
  std::mt19937 rng(7);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  auto d = std::make_shared<MemoryDevice>(std::move(bytes));
  d->torn_keep = 0;
  return d;
}

TEST(UndoDevice, RollbackRestoresEveryByteAfterOverlappingChanges) {
  auto disk = make_disk(1 << 20);
  UndoDevice undo(disk);
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    const std::vector<uint8_t> before = disk->bytes();
    undo.begin();
    for (int k = 0; k < 50; ++k) {
      uint64_t off = rng() % ((1 << 20) - 70000);
      uint64_t len = 1 + rng() % 65536;
      switch (rng() % 3) {
        case 0: {
          std::vector<uint8_t> d(len, static_cast<uint8_t>(rng()));
          ASSERT_TRUE(undo.write(off, d).ok());
          break;
        }
        case 1: ASSERT_TRUE(undo.zero(off, len).ok()); break;
        default: ASSERT_TRUE(undo.trim(off, len).ok()); break;
      }
    }
    ASSERT_NE(disk->bytes(), before);
    if (round % 2) {
      ASSERT_TRUE(undo.rollback().ok());
      EXPECT_EQ(disk->bytes(), before) << "round " << round;
    } else {
      undo.commit();  // the next round starts from these bytes
    }
    EXPECT_EQ(undo.held_bytes(), 0u);
    EXPECT_FALSE(undo.recording());
  }
}

TEST(UndoDevice, ATornWriteIsUndoneToo) {
  auto disk = make_disk(1 << 16);
  UndoDevice undo(disk);
  const std::vector<uint8_t> before = disk->bytes();
  undo.begin();
  std::vector<uint8_t> a(8192, 0xaa), b(8192, 0xbb);
  ASSERT_TRUE(undo.write(0, a).ok());
  disk->fail_write = disk->writes.load();
  disk->torn_keep = 4096;
  EXPECT_FALSE(undo.write(4096, b).ok());
  ASSERT_TRUE(undo.write(0, b).ok()) << "later writes still work";
  EXPECT_EQ(undo.first_error().code(), EIO) << "the failure is remembered for the caller that ignored it";
  EXPECT_EQ(disk->bytes()[4096], 0xbb) << "half of the torn write landed";
  ASSERT_TRUE(undo.rollback().ok());
  EXPECT_EQ(disk->bytes(), before);
}

TEST(UndoDevice, OutsideATransactionWritesAreNotKept) {
  auto disk = make_disk(1 << 16);
  UndoDevice undo(disk);
  std::vector<uint8_t> a(4096, 1);
  ASSERT_TRUE(undo.write(0, a).ok());
  EXPECT_EQ(undo.held_bytes(), 0u);
  undo.begin();
  ASSERT_TRUE(undo.write(0, a).ok());
  EXPECT_EQ(undo.held_bytes(), 4096u);
  ASSERT_TRUE(undo.rollback().ok());
  EXPECT_EQ(disk->bytes()[0], 1) << "the write before begin() stays";
}

TEST(UndoDevice, LimitRefusesTheWriteBeforeAnyByteChanges) {
  auto disk = make_disk(1 << 16);
  UndoDevice undo(disk, 10000);
  const std::vector<uint8_t> before = disk->bytes();
  undo.begin();
  std::vector<uint8_t> a(8192, 1);
  ASSERT_TRUE(undo.write(0, a).ok());
  Status st = undo.write(8192, a);
  EXPECT_EQ(st.code(), EFBIG);
  EXPECT_NE(disk->bytes()[8192], 1);
  ASSERT_TRUE(undo.rollback().ok());
  EXPECT_EQ(disk->bytes(), before);
}

TEST(UndoDevice, AFailedRollbackSaysHowMuchWasNotUndone) {
  auto disk = make_disk(1 << 16);
  UndoDevice undo(disk);
  undo.begin();
  std::vector<uint8_t> a(4096, 1);
  ASSERT_TRUE(undo.write(0, a).ok());
  ASSERT_TRUE(undo.write(8192, a).ok());
  disk->all_writes_fail = true;
  Status st = undo.rollback();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), EIO);
  EXPECT_NE(st.message().find("2 of 2"), std::string::npos) << st.message();
  EXPECT_FALSE(undo.recording());
}

}  // namespace
}  // namespace vdkit
