#include "blockcore/base/scratch.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace vdkit {
namespace {

TEST(ScratchLease, ReusedOnTheSameThreadAndDistinctWhenNested) {
  uint8_t* first = nullptr;
  {
    ScratchLease a(1 << 20);
    first = a.data();
    std::memset(a.data(), 0xab, 1 << 20);
    // A nested lease (a device reading its parent) must not hand out the buffer still in use.
    ScratchLease b(4096);
    EXPECT_NE(b.data(), a.data());
  }
  // After both ended, a lease no larger than the kept buffer reuses one of them: no fresh allocation.
  ScratchLease c(1 << 19);
  ScratchLease d(1 << 19);
  EXPECT_TRUE(c.data() == first || d.data() == first);
}

TEST(ScratchLease, GrowsToWhatIsAsked) {
  { ScratchLease small(16); }
  ScratchLease big(8u << 20);
  // Every byte of the grown buffer is writable (ASan would catch a buffer kept at the old size).
  std::memset(big.data(), 1, 8u << 20);
  EXPECT_EQ(big.data()[(8u << 20) - 1], 1);
}

TEST(ScratchLease, EachThreadHasItsOwn) {
  uint8_t* mine = nullptr;
  { ScratchLease l(4096); mine = l.data(); }
  // This thread's free buffer is not another thread's: the two may be in use at the same time.
  uint8_t* theirs = nullptr;
  std::thread t([&] {
    ScratchLease l(4096);
    theirs = l.data();
  });
  t.join();
  EXPECT_NE(theirs, mine);
  ScratchLease again(4096);
  EXPECT_EQ(again.data(), mine);
}

}  // namespace
}  // namespace vdkit
