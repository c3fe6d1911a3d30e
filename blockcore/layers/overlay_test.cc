// Tests for the in-memory overlay: random writes, zeros and trims checked against a byte-level model, extents, threads.
#include "blockcore/layers/overlay.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "blockcore/sources/image.h"
#include "blockcore/testing/memory_device.h"

namespace vdkit {
namespace {

// A base device held in memory: each 4 KiB block is data (random bytes), zero
// or hole; the last block may be short. types[i] is what byte i is.
struct ModelBase {
  std::shared_ptr<MemoryDevice> dev;
  std::vector<ExtentType> types;
};

ModelBase make_model_base(uint64_t size, uint32_t seed) {
  std::vector<uint8_t> bytes(size);
  ModelBase m{nullptr, std::vector<ExtentType>(size)};
  std::vector<Extent> extents;
  std::mt19937 rng(seed);
  for (uint64_t b = 0; b < size; b += 4096) {
    auto t = static_cast<ExtentType>(rng() % 3);
    uint64_t e = std::min<uint64_t>(size, b + 4096);
    append_extent(extents, {b, e - b, t});
    for (uint64_t i = b; i < e; ++i) {
      m.types[i] = t;
      bytes[i] = t == ExtentType::kData ? static_cast<uint8_t>(rng()) : 0;
    }
  }
  m.dev = std::make_shared<MemoryDevice>(std::move(bytes), false, "model");
  m.dev->set_extents(std::move(extents));
  return m;
}

// Run-length encodes types[offset, offset+length) as the extents contract asks.
std::vector<Extent> expected_extents(const std::vector<ExtentType>& types, uint64_t offset, uint64_t length) {
  std::vector<Extent> out;
  for (uint64_t i = offset; i < offset + length; ++i) append_extent(out, {i, 1, types[i]});
  return out;
}

TEST(MemoryOverlay, RandomOperationsMatchAByteModel) {
  constexpr uint64_t kSize = (1 << 20) + 1234;  // an odd size: the last block is short
  auto made = make_model_base(kSize, 7);
  auto base = made.dev;
  const std::vector<uint8_t> base_before = base->bytes();
  std::vector<uint8_t> model = base->bytes();
  std::vector<ExtentType> types = made.types;
  auto ov = make_memory_overlay(base);
  ASSERT_EQ(ov->size(), kSize);
  DeviceCaps caps = ov->caps();
  EXPECT_TRUE(caps.writable && caps.can_zero && caps.can_trim && caps.flush_consistent);

  std::mt19937_64 rng(99);
  auto pick_range = [&](uint64_t max_len) {
    uint64_t len = 1 + rng() % max_len;
    if (rng() % 4 == 0) len = 4096 * (1 + rng() % 8);  // aligned sizes as well as odd ones
    len = std::min(len, kSize);
    uint64_t off = rng() % (kSize - len + 1);
    if (rng() % 4 == 0) off -= off % 4096;
    return std::pair{off, len};
  };
  for (int op = 0; op < 4000; ++op) {
    int kind = static_cast<int>(rng() % 10);
    if (kind < 4) {
      auto [off, len] = pick_range(40000);
      std::vector<uint8_t> data(len);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      ASSERT_TRUE(ov->write(off, data).ok());
      std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(off));
      std::fill_n(types.begin() + static_cast<ptrdiff_t>(off), len, ExtentType::kData);
    } else if (kind < 6) {
      auto [off, len] = pick_range(100000);
      ASSERT_TRUE((kind == 4 ? ov->zero(off, len) : ov->trim(off, len)).ok());
      std::fill_n(model.begin() + static_cast<ptrdiff_t>(off), len, 0);
      std::fill_n(types.begin() + static_cast<ptrdiff_t>(off), len, ExtentType::kZero);
    } else if (kind < 9) {
      auto [off, len] = pick_range(200000);
      std::vector<uint8_t> got(len, 0xee);
      ASSERT_TRUE(ov->read(off, got).ok());
      ASSERT_TRUE(std::equal(got.begin(), got.end(), model.begin() + static_cast<ptrdiff_t>(off)))
          << "read of " << len << " at " << off << " after op " << op;
    } else {
      auto [off, len] = pick_range(300000);
      std::vector<Extent> got;
      ASSERT_TRUE(ov->extents(off, len, got).ok());
      ASSERT_EQ(got, expected_extents(types, off, len)) << "extents of " << len << " at " << off;
    }
  }
  std::vector<uint8_t> all(kSize);
  ASSERT_TRUE(ov->read(0, all).ok());
  EXPECT_EQ(all, model);
  std::vector<Extent> ex;
  ASSERT_TRUE(ov->extents(0, kSize, ex).ok());
  EXPECT_EQ(ex, expected_extents(types, 0, kSize));
  EXPECT_EQ(base->bytes(), base_before) << "the base must never be written";
  EXPECT_TRUE(ov->flush().ok());
}

TEST(MemoryOverlay, PartialWritesNeverReadTheBase) {
  auto made = make_model_base(1 << 16, 3);
  auto base = made.dev;
  auto ov = make_memory_overlay(base);
  std::vector<uint8_t> d(3, 0x11);
  ASSERT_TRUE(ov->write(4095, d).ok());
  ASSERT_TRUE(ov->zero(100, 7).ok());
  EXPECT_EQ(base->reads.load(), 0);
}

TEST(MemoryOverlay, RangesOutsideTheDeviceAreRefused) {
  auto made = make_model_base(8192, 1);
  auto base = made.dev;
  auto ov = make_memory_overlay(base);
  std::vector<uint8_t> d(10);
  EXPECT_EQ(ov->write(8190, d).code(), EINVAL);
  EXPECT_EQ(ov->read(8190, d).code(), EINVAL);
  EXPECT_EQ(ov->zero(UINT64_MAX - 2, 10).code(), EINVAL);
  std::vector<Extent> ex;
  EXPECT_EQ(ov->extents(1, UINT64_MAX, ex).code(), EINVAL);
}

TEST(MemoryOverlay, BaseErrorsPassThroughAndWrittenRangesHideThem) {
  auto made = make_model_base(1 << 16, 5);
  auto base = made.dev;
  base->bad_offset = 8192;
  base->bad_length = 100;
  auto ov = make_memory_overlay(base);
  std::vector<uint8_t> buf(4096);
  Status st = ov->read(8000, buf);
  EXPECT_EQ(st.code(), EIO);
  EXPECT_NE(st.message().find("injected read error at offset 8192"), std::string::npos) << st.message();
  std::vector<uint8_t> w(200, 0x42);
  ASSERT_TRUE(ov->write(8150, w).ok());
  std::vector<uint8_t> got(200);
  ASSERT_TRUE(ov->read(8150, got).ok());
  EXPECT_EQ(got, w);
}

TEST(MemoryOverlay, ConcurrentWritersAndReaders) {
  constexpr uint64_t kSize = 4 << 20;
  auto made = make_model_base(kSize, 11);
  auto base = made.dev;
  auto ov = make_memory_overlay(base);
  std::atomic<bool> failed{false};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      // Each writer owns a quarter of the disk and checks what it reads there.
      uint64_t lo = kSize / 4 * t, span = kSize / 4;
      std::vector<uint8_t> mine(base->bytes().begin() + static_cast<ptrdiff_t>(lo),
                                base->bytes().begin() + static_cast<ptrdiff_t>(lo + span));
      std::mt19937_64 rng(t);
      for (int i = 0; i < 400; ++i) {
        uint64_t len = 1 + rng() % 20000, off = rng() % (span - len);
        if (rng() % 3 == 0) {
          if (!ov->zero(lo + off, len).ok()) failed = true;
          std::fill_n(mine.begin() + static_cast<ptrdiff_t>(off), len, 0);
        } else {
          std::vector<uint8_t> d(len, static_cast<uint8_t>(rng()));
          if (!ov->write(lo + off, d).ok()) failed = true;
          std::copy(d.begin(), d.end(), mine.begin() + static_cast<ptrdiff_t>(off));
        }
        std::vector<uint8_t> got(len);
        if (!ov->read(lo + off, got).ok() ||
            !std::equal(got.begin(), got.end(), mine.begin() + static_cast<ptrdiff_t>(off)))
          failed = true;
      }
    });
  }
  std::thread reader([&] {
    std::vector<uint8_t> buf(1 << 16);
    std::vector<Extent> ex;
    std::mt19937_64 rng(42);
    while (!stop) {
      uint64_t off = rng() % (kSize - buf.size());
      if (!ov->read(off, buf).ok()) failed = true;
      ex.clear();
      if (!ov->extents(off, buf.size(), ex).ok()) failed = true;
      uint64_t covered = 0;
      for (const auto& e : ex) covered += e.length;
      if (covered != buf.size()) failed = true;
    }
  });
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  EXPECT_FALSE(failed.load());
}

TEST(MemoryOverlay, OverARawFileLeavesTheFileUnchanged) {
  char dir[] = "/tmp/vdkit-overlay-test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/disk.raw";
  {
    auto f = File::Open(path, File::Mode::kCreate);
    ASSERT_TRUE(f.ok());
    std::vector<uint8_t> d(65536, 0x33);
    ASSERT_TRUE((*f)->WriteExact(0, d.data(), d.size()).ok());
    ASSERT_TRUE((*f)->Truncate(1 << 20).ok());
  }
  auto raw = open_image(path);
  ASSERT_TRUE(raw.ok()) << raw.status().message();
  std::shared_ptr<BlockDevice> base(std::move(*raw));
  auto ov = make_memory_overlay(base);
  std::vector<uint8_t> w(5000, 0x77);
  ASSERT_TRUE(ov->write(65000, w).ok());
  ASSERT_TRUE(ov->zero(0, 100).ok());
  std::vector<uint8_t> got(70000);
  ASSERT_TRUE(ov->read(0, got).ok());
  for (size_t i = 0; i < got.size(); ++i) {
    uint8_t want = i < 100 ? 0 : i < 65000 ? 0x33 : i < 70000 ? 0x77 : 0;
    ASSERT_EQ(got[i], want) << "byte " << i;
  }
  std::vector<uint8_t> file_bytes(65536);
  ASSERT_TRUE(base->read(0, file_bytes).ok());
  EXPECT_EQ(file_bytes, std::vector<uint8_t>(65536, 0x33));
  std::vector<Extent> ex;
  ASSERT_TRUE(ov->extents(0, 1 << 20, ex).ok());
  ASSERT_GE(ex.size(), 3u);
  EXPECT_EQ(ex[0], (Extent{0, 100, ExtentType::kZero}));
  EXPECT_EQ(ex[1].type, ExtentType::kData);
  EXPECT_EQ(ex.back().type, ExtentType::kHole);  // the truncated tail of the file stays a hole
  std::remove(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace vdkit
