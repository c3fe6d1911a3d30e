// Concurrent readers on every driver, the grain cache and the memory overlay, checked byte for byte against
// qemu-img's raw output. Built normally and under ThreadSanitizer (scripts/tsan) to find data races.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "blockcore/sources/image.h"
#include "blockcore/layers/overlay.h"

namespace vdkit {
namespace {

class ConcurrentRead : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/vdkit-concurrent.XXXXXX";
    dir_ = mkdtemp(tmpl);
    // 8 MiB: random, compressible text and holes, so compressed grains share cache slots under contention.
    std::string py =
        "import random,sys\n"
        "r=random.Random(5)\n"
        "f=open(sys.argv[1],'wb'); f.truncate(8<<20)\n"
        "f.seek(0); f.write(bytes(r.getrandbits(8) for _ in range(1<<20)))\n"
        "f.seek(3<<20); f.write(b''.join(b'row %07d text\\n' % i for i in range(150000))[:2<<20])\n"
        "f.seek((7<<20)+333); f.write(b'\\x42'*100000)\n";
    std::ofstream(dir_ + "/gen.py") << py;
    run("python3 " + dir_ + "/gen.py " + dir_ + "/base.raw");
    run("qemu-img convert -q -O qcow2 -c " + dir_ + "/base.raw " + dir_ + "/zlib.qcow2");
    run("qemu-img convert -q -O qcow2 -o cluster_size=4096 " + dir_ + "/base.raw " + dir_ + "/small.qcow2");
    run("qemu-img convert -q -O vmdk -o subformat=streamOptimized " + dir_ + "/base.raw " + dir_ + "/stream.vmdk");
    run("qemu-img convert -q -O vmdk " + dir_ + "/base.raw " + dir_ + "/sparse.vmdk");
    std::ifstream in(dir_ + "/base.raw", std::ios::binary);
    ref_.assign(std::istreambuf_iterator<char>(in), {});
  }
  static void TearDownTestSuite() { run("rm -rf " + dir_); }
  static void run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

  // Many threads read random ranges (1 B to 300 KiB) and compare with the reference.
  static void hammer(BlockDevice& dev, unsigned threads, unsigned reads_per_thread) {
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        std::mt19937_64 rng(t * 7919 + 1);
        std::vector<uint8_t> buf;
        for (unsigned i = 0; i < reads_per_thread && !bad; ++i) {
          uint64_t len = 1 + rng() % (300 << 10);
          uint64_t off = rng() % (dev.size() - len);
          buf.resize(len);
          Status st = dev.read(off, buf);
          if (!st.ok() || memcmp(buf.data(), ref_.data() + off, len) != 0) {
            ADD_FAILURE() << "read " << off << "+" << len << ": " << st.ToString();
            bad = 1;
          }
        }
      });
    }
    for (auto& t : ts) t.join();
  }

  static inline std::string dir_;
  static inline std::vector<char> ref_;
};

TEST_F(ConcurrentRead, EveryDriverServesParallelReaders) {
  for (const char* name : {"base.raw", "zlib.qcow2", "small.qcow2", "stream.vmdk", "sparse.vmdk"}) {
    OpenOptions o;
    o.cache_bytes = 1 << 20;  // small, so eviction races with lookups
    auto dev = open_image(dir_ + "/" + name, o);
    ASSERT_TRUE(dev.ok()) << name << ": " << dev.status().message();
    ASSERT_EQ((*dev)->size(), ref_.size());
    SCOPED_TRACE(name);
    hammer(**dev, 6, 150);
  }
}

TEST_F(ConcurrentRead, MemoryOverlayReadsWhileWritersWriteElsewhere) {
  auto base = open_image(dir_ + "/stream.vmdk");
  ASSERT_TRUE(base.ok()) << base.status().message();
  std::shared_ptr<BlockDevice> shared(std::move(*base));
  BlockDevicePtr ov = make_memory_overlay(shared);
  ASSERT_TRUE(ov);
  // Writers own the last MiB; readers check the first 7 MiB, which must stay as the base.
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::vector<uint8_t> data(4096, static_cast<uint8_t>(w + 1));
      std::mt19937 rng(w);
      while (!stop) {
        uint64_t off = (7u << 20) + (rng() % 256) * 4096;
        EXPECT_TRUE(ov->write(off, data).ok());
      }
    });
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf;
      for (int i = 0; i < 200 && !bad; ++i) {
        uint64_t len = 1 + rng() % (128 << 10);
        uint64_t off = rng() % ((7u << 20) - len);
        buf.resize(len);
        if (!ov->read(off, buf).ok() || memcmp(buf.data(), ref_.data() + off, len) != 0) bad = 1;
      }
    });
  }
  for (auto& t : readers) t.join();
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_EQ(bad.load(), 0);
  // Every block the writers touched holds one writer's whole pattern.
  std::vector<uint8_t> blk(4096);
  for (uint64_t off = 7u << 20; off < (8u << 20); off += 4096) {
    ASSERT_TRUE(ov->read(off, blk).ok());
    if (memcmp(blk.data(), ref_.data() + off, 4096) == 0) continue;
    EXPECT_TRUE(std::all_of(blk.begin(), blk.end(), [&](uint8_t b) { return b == blk[0]; })) << "torn at " << off;
  }
}

}  // namespace
}  // namespace vdkit
