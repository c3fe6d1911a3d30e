// Tests for the ByteRanges helpers, against a byte-per-byte model where the cases are random.
#include "blockcore/base/byte_ranges.h"

#include <gtest/gtest.h>

#include <random>

namespace vdkit {
namespace {

TEST(NormalizeRanges, SortsMergesClips) {
  ByteRanges r = normalize_ranges({{50, 10}, {0, 5}, {5, 5}, {55, 20}, {90, 0}, {95, 100}, {200, 5}}, 100);
  ByteRanges want = {{0, 10}, {50, 25}, {95, 5}};
  EXPECT_EQ(r, want);
  EXPECT_EQ(overlap_bytes(r, 0, 100), 40u);
  EXPECT_EQ(overlap_bytes(r, 8, 45), 5u);
  EXPECT_EQ(overlap_bytes(r, 10, 40), 0u);
}

TEST(SubtractRanges, CutsEdgesMiddlesAndWholeRanges) {
  ByteRanges r = subtract_ranges({{0, 100}, {200, 50}, {300, 10}}, {{90, 120}, {220, 5}, {300, 10}, {0, 1}}, 1000);
  ByteRanges want = {{1, 89}, {210, 10}, {225, 25}};
  EXPECT_EQ(r, want);
  EXPECT_TRUE(subtract_ranges({{0, 10}}, {{0, 10}}, 10).empty());
  EXPECT_EQ(subtract_ranges({{0, 10}}, {}, 5), (ByteRanges{{0, 5}}));
}

TEST(SubtractRanges, MatchesAByteModel) {
  std::mt19937 rng(7);
  constexpr uint64_t kSize = 300;
  for (int round = 0; round < 500; ++round) {
    auto random_list = [&] {
      ByteRanges l;
      for (int i = rng() % 6; i > 0; --i) l.emplace_back(rng() % (kSize + 20), rng() % 60);
      return l;
    };
    ByteRanges a = random_list(), b = random_list();
    std::vector<bool> want(kSize, false);
    for (auto [o, l] : a)
      for (uint64_t i = o; i < o + l && i < kSize; ++i) want[i] = true;
    for (auto [o, l] : b)
      for (uint64_t i = o; i < o + l && i < kSize; ++i) want[i] = false;
    ByteRanges got = subtract_ranges(a, b, kSize);
    EXPECT_EQ(got, normalize_ranges(got, kSize)) << "not normalized, round " << round;
    std::vector<bool> have(kSize, false);
    for (auto [o, l] : got)
      for (uint64_t i = o; i < o + l; ++i) have[i] = true;
    ASSERT_EQ(have, want) << "round " << round;
  }
}

}  // namespace
}  // namespace vdkit
