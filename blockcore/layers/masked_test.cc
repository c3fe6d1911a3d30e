// Tests for MaskedDevice: reads and extents against a byte model, and that masked bytes are never read below.
#include "blockcore/layers/masked.h"

#include <gtest/gtest.h>

#include <random>

#include "blockcore/testing/memory_device.h"

namespace vdkit {
namespace {

struct Model {
  std::shared_ptr<MemoryDevice> dev;
  std::vector<uint8_t> bytes;
  std::vector<ExtentType> types;
};

Model make_model(uint64_t size, std::mt19937& rng) {
  Model m{nullptr, std::vector<uint8_t>(size), std::vector<ExtentType>(size)};
  std::vector<Extent> ex;
  for (uint64_t b = 0; b < size; b += 512) {
    auto t = static_cast<ExtentType>(rng() % 3);
    uint64_t e = std::min<uint64_t>(size, b + 512);
    append_extent(ex, {b, e - b, t});
    for (uint64_t i = b; i < e; ++i) {
      m.types[i] = t;
      m.bytes[i] = t == ExtentType::kData ? static_cast<uint8_t>(rng() | 1) : 0;
    }
  }
  m.dev = std::make_shared<MemoryDevice>(m.bytes, false);
  m.dev->set_extents(std::move(ex));
  return m;
}

TEST(MaskedDevice, MatchesModelAndNeverReadsMaskedBytes) {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    const uint64_t size = 20000 + rng() % 5000;
    Model m = make_model(size, rng);
    ByteRanges mask;
    for (int i = rng() % 8; i > 0; --i) mask.emplace_back(rng() % (size + 100), rng() % 3000);
    std::vector<bool> masked(size);
    for (auto [o, l] : mask)
      for (uint64_t i = o; i < o + l && i < size; ++i) masked[i] = true;
    std::vector<uint64_t> touched;
    m.dev->on_read = [&](uint64_t o, size_t l) {
      for (uint64_t i = o; i < o + l; ++i) touched.push_back(i);
    };
    auto dev = make_masked_device(m.dev, mask);
    ASSERT_EQ(dev->size(), size);
    for (int q = 0; q < 30; ++q) {
      uint64_t off = rng() % size, len = rng() % (size - off + 1);
      std::vector<uint8_t> buf(len, 0xcc);
      touched.clear();
      ASSERT_TRUE(dev->read(off, buf).ok());
      for (uint64_t i = 0; i < len; ++i)
        ASSERT_EQ(buf[i], masked[off + i] ? 0 : m.bytes[off + i]) << "byte " << off + i;
      for (uint64_t i : touched) ASSERT_FALSE(masked[i]) << "masked byte " << i << " was read from the base";
      std::vector<Extent> ex;
      ASSERT_TRUE(dev->extents(off, len, ex).ok());
      uint64_t pos = off;
      for (size_t k = 0; k < ex.size(); ++k) {
        ASSERT_EQ(ex[k].offset, pos);
        if (k) {
          ASSERT_NE(ex[k].type, ex[k - 1].type) << "adjacent extents of one type were not merged";
        }
        for (uint64_t i = ex[k].offset; i < ex[k].offset + ex[k].length; ++i)
          ASSERT_EQ(ex[k].type, masked[i] ? ExtentType::kHole : m.types[i]) << "byte " << i;
        pos += ex[k].length;
      }
      ASSERT_EQ(pos, off + len);
    }
  }
}

// Records the ranges it is asked to prefetch.
class PrefetchRecorder final : public BlockDevice {
 public:
  uint64_t size() const override { return 10000; }
  Status read(uint64_t, std::span<uint8_t>) override { return Status::IoError("not read here"); }
  Status extents(uint64_t o, uint64_t l, std::vector<Extent>& out) override {
    out.push_back({o, l, ExtentType::kData});
    return Status::Ok();
  }
  Status prefetch(uint64_t o, uint64_t l) override {
    asked.emplace_back(o, l);
    return Status::Ok();
  }
  const ImageInfo& info() const override { return info_; }
  ByteRanges asked;

 private:
  ImageInfo info_;
};

TEST(MaskedDevice, PrefetchesOnlyUnmaskedPieces) {
  auto base = std::make_shared<PrefetchRecorder>();
  auto dev = make_masked_device(base, {{1000, 1000}, {5000, 500}});
  ASSERT_TRUE(dev->prefetch(500, 5500).ok());
  ByteRanges want = {{500, 500}, {2000, 3000}, {5500, 500}};
  EXPECT_EQ(base->asked, want);
}

TEST(MaskedDevice, IsReadOnlyAndChecksRanges) {
  auto base = std::make_shared<MemoryDevice>(8192, true);
  auto dev = make_masked_device(base, {{0, 4096}});
  EXPECT_FALSE(dev->caps().writable);
  std::vector<uint8_t> b(10);
  EXPECT_EQ(dev->write(0, b).code(), EROFS);
  EXPECT_EQ(dev->read(8190, b).code(), EINVAL);
  std::vector<Extent> ex;
  EXPECT_EQ(dev->extents(8000, 200, ex).code(), EINVAL);
}

}  // namespace
}  // namespace vdkit
