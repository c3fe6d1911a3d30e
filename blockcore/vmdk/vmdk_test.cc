// VMDK driver behaviour under concurrency, a tiny grain cache and I/O faults, checked against qemu-img's reading.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "blockcore/sources/image.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;

// Reads fail with EIO once armed; everything else goes to pread/pwrite.
class FailingEngine final : public IoEngine {
 public:
  const char* name() const override { return "failing"; }
  Status submit(std::span<IoRequest> reqs) override {
    if (!armed) return inner_->submit(reqs);
    for (auto& r : reqs) r.result = -EIO;
    return Status::IoError("injected I/O error");
  }
  std::atomic<bool> armed{false};

 private:
  std::unique_ptr<IoEngine> inner_ = make_sync_engine();
};

class VmdkRead : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("qemu-img --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "qemu-img is not installed";
    char tmpl[] = "/tmp/vdkit-vmdk-read.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // 6 MiB + 3 sectors: text-like (compressible), random, zeros and a hole, odd tail.
    std::string raw((6u << 20) + 1536, '\0');
    std::mt19937 rng(11);
    for (size_t i = 0; i < (2u << 20); ++i) raw[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    for (size_t i = 2u << 20; i < (3u << 20); ++i) raw[i] = static_cast<char>(rng());
    for (size_t i = 5u << 20; i < raw.size(); i += 3) raw[i] = 'z';
    std::ofstream(dir_ + "/src.raw", std::ios::binary) << raw;
    ASSERT_EQ(run("qemu-img convert -q -O vmdk -o subformat=streamOptimized src.raw s.vmdk"), 0);
    ASSERT_EQ(run("qemu-img convert -q -O raw s.vmdk ref.raw"), 0);
    std::ifstream f(dir_ + "/ref.raw", std::ios::binary);
    ref_.assign(std::istreambuf_iterator<char>(f), {});
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  int run(const std::string& cmd) { return std::system(("cd '" + dir_ + "' && " + cmd).c_str()); }

  std::string dir_;
  std::vector<uint8_t> ref_;
};

TEST_F(VmdkRead, ConcurrentRandomReadsWithATinyCacheMatchQemu) {
  OpenOptions o;
  o.cache_bytes = 256u << 10;  // a few grains: constant eviction
  auto dev = open_image(dir_ + "/s.vmdk", o);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  ASSERT_EQ((*dev)->size(), ref_.size());
  std::atomic<int> bad{0};
  auto worker = [&](unsigned seed) {
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> buf;
    for (int i = 0; i < 300; ++i) {
      uint64_t len = 1 + rng() % ((i % 10 == 0) ? (3u << 20) : 8192);
      uint64_t off = rng() % (ref_.size() - len + 1);
      buf.resize(len);
      Status st = (*dev)->read(off, buf);
      if (!st.ok() || std::memcmp(buf.data(), ref_.data() + off, len) != 0) ++bad;
    }
  };
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 4; ++t) ts.emplace_back(worker, t + 1);
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  // Reading past the end is EINVAL, not a crash.
  std::vector<uint8_t> one(1);
  EXPECT_EQ((*dev)->read((*dev)->size(), one).code(), EINVAL);
}

TEST_F(VmdkRead, IoErrorsSurfaceAsErrors) {
  FailingEngine engine;
  OpenOptions o;
  o.engine = &engine;
  o.cache_bytes = 0;
  auto dev = open_image(dir_ + "/s.vmdk", o);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  engine.armed = true;
  std::vector<uint8_t> buf(1u << 20);
  Status st = (*dev)->read(0, buf);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), EIO) << st.message();
  engine.armed = false;
  EXPECT_TRUE((*dev)->read(0, buf).ok());
  EXPECT_EQ(std::memcmp(buf.data(), ref_.data(), buf.size()), 0);
}

}  // namespace
}  // namespace vdkit
