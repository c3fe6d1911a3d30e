// qcow2 writing: overlays and in-place writes checked with `qemu-img check` and `qemu-img compare` against a raw twin.
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
#include "blockcore/layers/overlay.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;

using test::run;

bool have_qemu_img() { return run("qemu-img --version") == 0; }

class Qcow2WriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
    char tmpl[] = "/tmp/vdkit-qcow2-write.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A raw file of `size` bytes: random MiBs, a text-like stretch, zeros and holes.
  void make_base(const std::string& p, uint64_t size) {
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    std::mt19937_64 rng(99);
    std::vector<uint8_t> b(1 << 20);
    for (uint64_t off = 0; off + b.size() <= size; off += 2 * b.size()) {
      for (auto& x : b) x = static_cast<uint8_t>(rng());
      ASSERT_EQ(::pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)), static_cast<ssize_t>(b.size()));
    }
    ::close(fd);
  }

  // Applies the same write to the device and to the raw twin.
  void both_write(BlockDevice& d, int twin, uint64_t off, uint64_t len, uint8_t seed) {
    std::vector<uint8_t> b(len);
    for (uint64_t i = 0; i < len; ++i) b[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    Status st = d.write(off, b);
    ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_EQ(::pwrite(twin, b.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  }
  void both_zero(BlockDevice& d, int twin, uint64_t off, uint64_t len, bool trim = false) {
    Status st = trim ? d.trim(off, len) : d.zero(off, len);
    ASSERT_TRUE(st.ok()) << st.message();
    std::vector<uint8_t> z(len, 0);
    ASSERT_EQ(::pwrite(twin, z.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  }

  // qemu-img check finds no errors or leaks, and the image reads as the twin.
  void expect_clean_and_equal(const std::string& img, const std::string& twin) {
    std::string out;
    EXPECT_EQ(run("qemu-img check '" + img + "'", &out), 0) << out;
    EXPECT_EQ(run("cd '" + dir_ + "' && qemu-img compare -f qcow2 -F raw '" + img + "' '" + twin + "'", &out), 0)
        << out;
  }

  // The ops every write test applies: unaligned writes across cluster and L2
  // boundaries, whole clusters, partial writes over backing data, zero and trim.
  void apply_ops(BlockDevice& d, int twin, uint64_t size) {
    both_write(d, twin, 1000, 5000, 1);                 // inside and across the first clusters
    both_write(d, twin, 65536 - 100, 200, 2);           // across a 64 KiB boundary
    both_write(d, twin, 3 * 65536, 2 * 65536, 3);       // two whole clusters
    both_write(d, twin, (1 << 20) + 12345, 300000, 4);  // over random backing data
    both_write(d, twin, (2 << 20) - 7, 14, 5);          // tiny, across a MiB boundary
    both_zero(d, twin, 4 * 65536 + 10, 65536);          // partial zero over new data
    both_zero(d, twin, 1 << 20, 3 << 20);               // whole clusters over backing data
    both_write(d, twin, (1 << 20) + 4096, 8192, 6);     // write into zeroed clusters
    both_zero(d, twin, (5 << 20) + 300, 100000, true);  // trim
    both_write(d, twin, size - 5000, 5000, 7);          // the last bytes of the disk
    both_write(d, twin, 1000, 5000, 8);                 // rewrite in place
  }

  std::string dir_;
};

TEST_F(Qcow2WriteTest, OverlayOverRawIsCleanAndReadsAsTwin) {
  const uint64_t size = 8 << 20;
  make_base(path("base.raw"), size);
  ASSERT_EQ(run("cp --sparse=always '" + path("base.raw") + "' '" + path("twin.raw") + "'"), 0);
  int twin = ::open(path("twin.raw").c_str(), O_RDWR);
  ASSERT_GE(twin, 0);
  {
    auto dev = create_qcow2_overlay(path("ovl.qcow2"), path("base.raw"), "raw", size, {});
    ASSERT_TRUE(dev.ok()) << dev.status().message();
    EXPECT_TRUE((*dev)->caps().writable);
    apply_ops(**dev, twin, size);
    ASSERT_TRUE((*dev)->flush().ok());
    // What we wrote reads back through the device too.
    std::vector<uint8_t> a(size), b(size);
    ASSERT_TRUE((*dev)->read(0, a).ok());
    ASSERT_EQ(::pread(twin, b.data(), size, 0), static_cast<ssize_t>(size));
    EXPECT_TRUE(a == b);
  }
  ::close(twin);
  expect_clean_and_equal(path("ovl.qcow2"), path("twin.raw"));
  std::string out;
  ASSERT_EQ(run("qemu-img info --output=json '" + path("ovl.qcow2") + "'", &out), 0);
  EXPECT_NE(out.find("\"backing-filename\": \"base.raw\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"backing-filename-format\": \"raw\""), std::string::npos) << out;
}

TEST_F(Qcow2WriteTest, OverlayRefusesAnExistingFile) {
  make_base(path("base.raw"), 1 << 20);
  ASSERT_EQ(run("touch '" + path("ovl.qcow2") + "'"), 0);
  auto dev = create_qcow2_overlay(path("ovl.qcow2"), path("base.raw"), "raw", 1 << 20, {});
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), EEXIST) << dev.status().message();
}

// In place on copies of qemu-made images: compressed (zlib, zstd), v2, small clusters, over a qcow2 backing.
struct InPlaceCase {
  const char* name;
  const char* make;  // shell, run in the test folder, making img.qcow2 from base.raw
};

class Qcow2InPlaceTest : public Qcow2WriteTest, public ::testing::WithParamInterface<InPlaceCase> {};

TEST_P(Qcow2InPlaceTest, WritesAreCleanAndReadAsTwin) {
  const uint64_t size = 8 << 20;
  make_base(path("base.raw"), size);
  std::string out;
  ASSERT_EQ(run("cd '" + dir_ + "' && " + GetParam().make, &out), 0) << out;
  ASSERT_EQ(run("cd '" + dir_ + "' && qemu-img convert -O raw img.qcow2 twin.raw", &out), 0) << out;
  int twin = ::open(path("twin.raw").c_str(), O_RDWR);
  ASSERT_GE(twin, 0);
  {
    OpenOptions o;
    o.writable = true;
    auto dev = open_image(path("img.qcow2"), o);
    ASSERT_TRUE(dev.ok()) << dev.status().message();
    apply_ops(**dev, twin, size);
    ASSERT_TRUE((*dev)->flush().ok());
  }
  ::close(twin);
  expect_clean_and_equal(path("img.qcow2"), path("twin.raw"));
}

INSTANTIATE_TEST_SUITE_P(
    Images, Qcow2InPlaceTest,
    ::testing::Values(InPlaceCase{"v3", "qemu-img convert -O qcow2 base.raw img.qcow2"},
                      InPlaceCase{"v2", "qemu-img convert -O qcow2 -o compat=0.10 base.raw img.qcow2"},
                      InPlaceCase{"zlib", "qemu-img convert -c -O qcow2 base.raw img.qcow2"},
                      InPlaceCase{"zstd", "qemu-img convert -c -O qcow2 -o compression_type=zstd base.raw img.qcow2"},
                      InPlaceCase{"c512_refbits1",
                                  "qemu-img convert -O qcow2 -o cluster_size=512,refcount_bits=1 base.raw img.qcow2"},
                      InPlaceCase{"c4k_refbits64",
                                  "qemu-img convert -O qcow2 -o cluster_size=4k,refcount_bits=64 base.raw img.qcow2"},
                      InPlaceCase{"v2_over_raw",
                                  "qemu-img create -q -f qcow2 -o compat=0.10 -b base.raw -F raw img.qcow2 && "
                                  "qemu-io -f qcow2 -c 'write -P 0x41 0 100k' img.qcow2 >/dev/null"},
                      InPlaceCase{
                          "over_qcow2",
                          "qemu-img convert -O qcow2 base.raw mid.qcow2 && "
                          "qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 img.qcow2 && "
                          "qemu-io -f qcow2 -c 'write -z 0 1M' -c 'write -P 0x42 2M 100k' img.qcow2 >/dev/null"}),
    [](const ::testing::TestParamInfo<InPlaceCase>& i) { return std::string(i.param.name); });

// Many scattered new clusters with 512-byte clusters outgrow the refcount table, which must then move.
TEST_F(Qcow2WriteTest, RefcountTableGrowsAndStaysConsistent) {
  const uint64_t size = 32 << 20;
  std::string out;
  ASSERT_EQ(run("qemu-img create -q -f qcow2 -o cluster_size=512 '" + path("img.qcow2") + "' 32M", &out), 0) << out;
  ASSERT_EQ(run("truncate -s 32M '" + path("twin.raw") + "'"), 0);
  int twin = ::open(path("twin.raw").c_str(), O_RDWR);
  ASSERT_GE(twin, 0);
  {
    OpenOptions o;
    o.writable = true;
    auto dev = open_image(path("img.qcow2"), o);
    ASSERT_TRUE(dev.ok()) << dev.status().message();
    for (uint64_t off = 0; off < size; off += 1 << 20)
      both_write(**dev, twin, off + 777, 600 << 10, uint8_t(off >> 20));
    ASSERT_TRUE((*dev)->flush().ok());
  }
  ::close(twin);
  expect_clean_and_equal(path("img.qcow2"), path("twin.raw"));
}

// Readers of one range run while a writer fills another.
TEST_F(Qcow2WriteTest, ReadsOfOtherRangesProceedDuringWrites) {
  const uint64_t size = 8 << 20;
  make_base(path("base.raw"), size);
  auto dev = create_qcow2_overlay(path("ovl.qcow2"), path("base.raw"), "raw", size, {});
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  std::vector<uint8_t> want(4 << 20);
  int fd = ::open(path("base.raw").c_str(), O_RDONLY);
  ASSERT_EQ(::pread(fd, want.data(), want.size(), 0), static_cast<ssize_t>(want.size()));
  ::close(fd);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    std::vector<uint8_t> got(want.size());
    while (!stop) {
      if (!(*dev)->read(0, got).ok() || got != want) bad++;
    }
  });
  std::vector<uint8_t> b(64 << 10, 0x5c);
  for (uint64_t off = 4 << 20; off < size; off += b.size() / 2) {
    uint64_t n = std::min<uint64_t>(b.size(), size - off);
    ASSERT_TRUE((*dev)->write(off, std::span<const uint8_t>(b.data(), n)).ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

// Random writes, zeroes and trims (seeded) against a raw twin, on an overlay and on small-cluster
// images in place: the device reads as the twin throughout, and qemu-img finds the result clean.
TEST_F(Qcow2WriteTest, RandomOperationsMatchTheTwin) {
  const uint64_t size = 6 << 20;
  make_base(path("base.raw"), size);
  std::string out;
  ASSERT_EQ(run("cd '" + dir_ +
                    "' && qemu-img convert -c -O qcow2 -o cluster_size=4k base.raw c4k.qcow2 && "
                    "qemu-img convert -O qcow2 -o cluster_size=512,compat=0.10 base.raw v2-512.qcow2",
                &out),
            0)
      << out;
  for (const char* target : {"overlay", "c4k.qcow2", "v2-512.qcow2"}) {
    SCOPED_TRACE(target);
    const std::string twin_path = path(std::string("twin-") + target + ".raw");
    ASSERT_EQ(run("cp --sparse=always '" + path("base.raw") + "' '" + twin_path + "'"), 0);
    int twin = ::open(twin_path.c_str(), O_RDWR);
    ASSERT_GE(twin, 0);
    std::string img = std::string(target) == "overlay" ? path("ovl.qcow2") : path(target);
    {
      Result<BlockDevicePtr> dev = Status::Invalid("not opened");
      if (std::string(target) == "overlay") {
        dev = create_qcow2_overlay(img, path("base.raw"), "raw", size, {});
      } else {
        OpenOptions o;
        o.writable = true;
        dev = open_image(img, o);
      }
      ASSERT_TRUE(dev.ok()) << dev.status().message();
      BlockDevice& d = **dev;
      std::mt19937_64 rng(std::hash<std::string>{}(target));
      std::vector<uint8_t> a(size), b(size);
      for (int op = 1; op <= 240; ++op) {
        uint64_t len = 1 + rng() % (rng() % 4 == 0 ? 400000 : 9000);
        uint64_t off = rng() % (size - len + 1);
        switch (rng() % 5) {
          case 0:
            both_zero(d, twin, off, len);
            break;
          case 1:
            both_zero(d, twin, off, len, true);
            break;
          default:
            both_write(d, twin, off, len, static_cast<uint8_t>(op));
            break;
        }
        if (HasFatalFailure()) return;
        if (op % 60 == 0) {
          ASSERT_TRUE(d.read(0, a).ok());
          ASSERT_EQ(::pread(twin, b.data(), size, 0), static_cast<ssize_t>(size));
          ASSERT_TRUE(a == b) << "after op " << op;
        }
      }
      ASSERT_TRUE(d.flush().ok());
    }
    ::close(twin);
    expect_clean_and_equal(img, twin_path);
  }
}

TEST_F(Qcow2WriteTest, RefusesWritesItCannotDo) {
  std::string out;
  ASSERT_EQ(run("cd '" + dir_ +
                    "' && qemu-img create -q -f qcow2 -o extended_l2=on xl2.qcow2 1M && "
                    "qemu-img create -q -f qcow2 -o data_file=d.bin df.qcow2 1M && "
                    "qemu-img create -q -f qcow2 snap.qcow2 1M && qemu-img snapshot -c s snap.qcow2",
                &out),
            0)
      << out;
  OpenOptions o;
  o.writable = true;
  for (const char* name : {"xl2.qcow2", "df.qcow2", "snap.qcow2"}) {
    auto dev = open_image(path(name), o);
    ASSERT_FALSE(dev.ok()) << name;
    EXPECT_EQ(dev.status().code(), ENOTSUP) << dev.status().message();
    EXPECT_NE(dev.status().message().find("not supported"), std::string::npos) << dev.status().message();
  }
  // Read-only opens of the same images work.
  for (const char* name : {"xl2.qcow2", "df.qcow2", "snap.qcow2"}) {
    auto dev = open_image(path(name));
    EXPECT_TRUE(dev.ok()) << name << ": " << dev.status().message();
  }
}

}  // namespace
}  // namespace vdkit
