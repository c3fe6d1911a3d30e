// Tests for GrainCache, ThreadPool, codecs and the raw driver's basic contract.
#include "blockcore/base/grain_cache.h"

#include <gtest/gtest.h>

#include <atomic>

#include "blockcore/base/codec.h"
#include "blockcore/base/thread_pool.h"

namespace vdkit {
namespace {

GrainBuffer buf(size_t n, uint8_t v) { return std::make_shared<const std::vector<uint8_t>>(n, v); }

TEST(GrainCache, EvictsLeastRecentlyUsedWithinCapacity) {
  GrainCache c(16 * 4096);  // one 4 KiB entry per shard
  for (uint64_t k = 0; k < 1000; ++k) c.put(k, buf(4096, static_cast<uint8_t>(k)));
  EXPECT_LE(c.bytes(), 16u * 4096u);
  auto hit = c.get(999);
  ASSERT_TRUE(hit);
  EXPECT_EQ((*hit)[0], static_cast<uint8_t>(999));
}

TEST(GrainCache, RefusesEntriesLargerThanAShard) {
  GrainCache c(16 * 1024);
  c.put(1, buf(4096, 1));
  EXPECT_FALSE(c.get(1));
}

TEST(ThreadPool, ParallelForRunsEveryIndexOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(Codec, RoundTripsEveryCodec) {
  std::vector<uint8_t> src(65536);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>((i / 7) % 13);
  for (Codec c : {Codec::kDeflate, Codec::kZlib, Codec::kZstd}) {
    auto z = compress(c, src, src.size());
    ASSERT_FALSE(z.empty());
    z.resize(z.size() + 511, 0xAA);  // trailing sector padding must be ignored
    std::vector<uint8_t> out(src.size());
    ASSERT_TRUE(decompress(c, z, out).ok());
    EXPECT_EQ(out, src);
  }
}

TEST(Codec, NoLevelMeansTheDefaultLevel) {
  // Text-like data on which libdeflate's levels give different output, so a wrong default shows.
  std::vector<uint8_t> src(65536);
  uint32_t x = 12345;
  for (auto& b : src) {
    x = x * 1103515245 + 12345;
    b = static_cast<uint8_t>('a' + (x >> 16) % 6);
  }
  const int other = kDefaultDeflateLevel == 6 ? 4 : 6;
  for (Codec c : {Codec::kDeflate, Codec::kZlib}) {
    ASSERT_NE(compress(c, src, src.size(), other), compress(c, src, src.size(), kDefaultDeflateLevel));
    EXPECT_EQ(compress(c, src, src.size()), compress(c, src, src.size(), kDefaultDeflateLevel));
    EXPECT_EQ(compress(c, src, src.size(), 99), compress(c, src, src.size(), kDefaultDeflateLevel));
  }
}

TEST(Codec, CorruptInputIsAnErrorNotACrash) {
  std::vector<uint8_t> junk(100, 0xFF), out(65536);
  for (Codec c : {Codec::kDeflate, Codec::kZlib, Codec::kZstd}) EXPECT_FALSE(decompress(c, junk, out).ok());
}

TEST(Codec, IsAllZero) {
  std::vector<uint8_t> z(4099, 0);
  EXPECT_TRUE(is_all_zero(z.data(), z.size()));
  EXPECT_TRUE(is_all_zero(z.data() + 1, z.size() - 1));
  z[4098] = 1;
  EXPECT_FALSE(is_all_zero(z.data(), z.size()));
}

}  // namespace
}  // namespace vdkit
