// qcow2 reading: info fields, prefetch and many concurrent readers, checked against qemu-img's reading of the same
// images.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;

using test::run;

std::string specific(const ImageInfo& i, const std::string& key) {
  for (const auto& [k, v] : i.specific)
    if (k == key) return v;
  return "<missing>";
}

class Qcow2ReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run("qemu-img --version") != 0) GTEST_SKIP() << "qemu-img is not installed";
    char tmpl[] = "/tmp/vdkit-qcow2-read.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // 8 MiB: compressible text, random bytes, zeros and holes.
    std::string out;
    ASSERT_EQ(run("cd '" + dir_ +
                      "' && truncate -s 8M base.raw && "
                      "python3 -c \"import random,sys; r=random.Random(3); f=open('base.raw','r+b'); "
                      "f.write(b''.join(b'text line %d\\n' % i for i in range(200000))[:3<<20]); "
                      "f.seek(4<<20); f.write(bytes(r.getrandbits(8) for _ in range(1<<20)))\"",
                  &out),
              0)
        << out;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string path(const std::string& n) const { return dir_ + "/" + n; }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(run("cd '" + dir_ + "' && " + cmd, &out), 0) << cmd << ": " << out;
  }
  std::vector<uint8_t> qemu_bytes(const std::string& img) {
    sh("qemu-img convert -O raw '" + img + "' ref.raw");
    std::vector<uint8_t> b(fs::file_size(path("ref.raw")));
    int fd = ::open(path("ref.raw").c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
    ::close(fd);
    return b;
  }
  std::string dir_;
};

TEST_F(Qcow2ReadTest, InfoDescribesVersionsChainAndFeatures) {
  sh("qemu-img convert -O qcow2 -o compat=0.10 base.raw v2.qcow2 && "
     "qemu-img create -q -f qcow2 -o compression_type=zstd,lazy_refcounts=on,refcount_bits=64 -b v2.qcow2 -F qcow2 "
     "top.qcow2");
  auto dev = open_image(path("top.qcow2"));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  const ImageInfo& i = (*dev)->info();
  EXPECT_EQ(i.format, "qcow2");
  EXPECT_EQ(i.version, 3);
  EXPECT_EQ(i.virtual_size, 8u << 20);
  EXPECT_EQ(i.cluster_size, 65536u);
  EXPECT_EQ(i.compression, "zstd");
  EXPECT_EQ(specific(i, "compat"), "1.1");
  EXPECT_EQ(specific(i, "lazy refcounts"), "true");
  EXPECT_EQ(specific(i, "refcount bits"), "64");
  EXPECT_EQ(i.backing_filename, "v2.qcow2");
  EXPECT_EQ(i.backing_format, "qcow2");
  EXPECT_EQ(fs::path(i.backing_resolved).filename(), "v2.qcow2");
  ASSERT_TRUE(i.backing);
  EXPECT_EQ(i.backing->version, 2);
  EXPECT_EQ(specific(*i.backing, "compat"), "0.10");
  EXPECT_FALSE(i.dirty);
  EXPECT_FALSE(i.corrupt);
}

TEST_F(Qcow2ReadTest, PrefetchThenReadAgreesWithQemu) {
  sh("qemu-img convert -c -O qcow2 base.raw z.qcow2");
  auto want = qemu_bytes("z.qcow2");
  auto dev = open_image(path("z.qcow2"));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  ASSERT_TRUE((*dev)->prefetch(0, (*dev)->size()).ok());
  EXPECT_FALSE((*dev)->prefetch(1, (*dev)->size()).ok());  // past the end
  std::vector<uint8_t> got((*dev)->size());
  ASSERT_TRUE((*dev)->read(0, got).ok());
  EXPECT_TRUE(got == want);
}

// Many threads read random unaligned ranges of a compressed image over a backing
// file while sharing the L2 and inflated-cluster caches (sized small to force eviction).
TEST_F(Qcow2ReadTest, ConcurrentReadersSeeQemuBytes) {
  sh("qemu-img convert -c -O qcow2 -o cluster_size=4k base.raw low.qcow2 && "
     "qemu-img create -q -f qcow2 -o cluster_size=4k -b low.qcow2 -F qcow2 top.qcow2 && "
     "qemu-io -f qcow2 -c 'write -P 0x5a 1M 200k' -c 'write -z 5M 300k' top.qcow2 >/dev/null");
  auto want = qemu_bytes("top.qcow2");
  OpenOptions o;
  o.cache_bytes = 256 << 10;
  auto dev = open_image(path("top.qcow2"), o);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf;
      for (int k = 0; k < 150; ++k) {
        uint64_t len = 1 + rng() % 300000;
        uint64_t off = rng() % (want.size() - len);
        buf.resize(len);
        if (!(*dev)->read(off, buf).ok() || !std::equal(buf.begin(), buf.end(), want.begin() + off)) bad++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace vdkit
