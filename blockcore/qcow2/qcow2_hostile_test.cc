// Hostile qcow2 input (after qemu-iotests 060, 080): bytes poked into qemu-made images give clear errors, never
// crashes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "blockcore/qcow2/qcow2_format.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;
using namespace qcow2;

using test::run;

class Qcow2HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run("qemu-img --version") != 0) GTEST_SKIP() << "qemu-img is not installed";
    char tmpl[] = "/tmp/vdkit-qcow2-hostile.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Runs shell commands in the test folder.
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(run("cd '" + dir_ + "' && " + cmd, &out), 0) << cmd << ": " << out;
  }
  // A small v3 image with data in its first clusters (so L1[0] and L2 entries exist).
  std::string make_image(const std::string& name, const std::string& opts = "") {
    sh("qemu-img create -q -f qcow2 " + opts + " " + name + " 4M && qemu-io -f qcow2 -c 'write -P 0x61 0 128k' " +
       name + " >/dev/null");
    return path(name);
  }

  void poke(const std::string& p, uint64_t off, const void* bytes, size_t len) {
    int fd = ::open(p.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, bytes, len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    ::close(fd);
  }
  void poke32(const std::string& p, uint64_t off, uint32_t v) {
    uint8_t b[4];
    store_be32(b, v);
    poke(p, off, b, 4);
  }
  void poke64(const std::string& p, uint64_t off, uint64_t v) {
    uint8_t b[8];
    store_be64(b, v);
    poke(p, off, b, 8);
  }
  uint64_t peek64(const std::string& p, uint64_t off) {
    uint8_t b[8] = {};
    int fd = ::open(p.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, b, 8, static_cast<off_t>(off)), 8);
    ::close(fd);
    return load_be64(b);
  }
  uint64_t file_size(const std::string& p) { return fs::file_size(p); }
  // Rewrites the backing file name in place (the first cluster has room after it).
  void set_backing_name(const std::string& p, const std::string& name) {
    uint64_t off = peek64(p, kOffBackingFileOffset);
    ASSERT_NE(off, 0u);
    poke(p, off, name.data(), name.size());
    poke32(p, kOffBackingFileSize, static_cast<uint32_t>(name.size()));
  }
  // Host offset of the first L2 table.
  uint64_t l2_offset(const std::string& p) { return peek64(p, peek64(p, kOffL1TableOffset)) & kL1OffsetMask; }

  // Opening fails with `code` and a message containing `what`.
  void expect_open_error(const std::string& p, int code, const std::string& what, OpenOptions o = {}) {
    auto dev = open_image(p, o);
    ASSERT_FALSE(dev.ok()) << "opened although it should not: " << p;
    EXPECT_EQ(dev.status().code(), code) << dev.status().message();
    EXPECT_NE(dev.status().message().find(what), std::string::npos)
        << "message '" << dev.status().message() << "' does not contain '" << what << "'";
  }
  // Opening works but reading the first MiB fails with EINVAL naming `what`.
  void expect_read_error(const std::string& p, const std::string& what) {
    auto dev = open_image(p);
    ASSERT_TRUE(dev.ok()) << dev.status().message();
    std::vector<uint8_t> buf(1 << 20);
    Status st = (*dev)->read(0, buf);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), EINVAL) << st.message();
    EXPECT_NE(st.message().find(what), std::string::npos)
        << "message '" << st.message() << "' does not contain '" << what << "'";
  }

  std::string dir_;
};

TEST_F(Qcow2HostileTest, HugeL1Size) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffL1Size, 0x10000000);
  expect_open_error(p, EINVAL, "l1_size");
}

TEST_F(Qcow2HostileTest, L1TooSmallForTheSize) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffSize, 1ull << 50);
  expect_open_error(p, EINVAL, "l1_size");
}

TEST_F(Qcow2HostileTest, MisalignedL1TableOffset) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffL1TableOffset, peek64(p, kOffL1TableOffset) + 512);
  expect_open_error(p, EINVAL, "l1_table_offset");
}

TEST_F(Qcow2HostileTest, L1TablePastEndOfFile) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffL1TableOffset, 1ull << 40);
  expect_open_error(p, EINVAL, "past the end of the file");
}

TEST_F(Qcow2HostileTest, MisalignedRefcountTableOffset) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffRefcountTableOffset, 0x10200);
  expect_open_error(p, EINVAL, "refcount_table_offset");
}

TEST_F(Qcow2HostileTest, HugeRefcountTable) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffRefcountTableClusters, 0x100000);
  expect_open_error(p, EINVAL, "refcount_table_clusters");
}

TEST_F(Qcow2HostileTest, MisalignedL2TableOffset) {
  auto p = make_image("a.qcow2");
  uint64_t l1 = peek64(p, kOffL1TableOffset);
  poke64(p, l1, ((peek64(p, l1) & kL1OffsetMask) + 512) | kOflagCopied);
  expect_read_error(p, "not aligned");
}

TEST_F(Qcow2HostileTest, L2TablePastEndOfFile) {
  auto p = make_image("a.qcow2");
  poke64(p, peek64(p, kOffL1TableOffset), (1ull << 40) | kOflagCopied);
  expect_read_error(p, "L2 table at");
}

TEST_F(Qcow2HostileTest, L2EntryPastEndOfFile) {
  auto p = make_image("a.qcow2");
  poke64(p, l2_offset(p) + 8, (1ull << 36) | kOflagCopied);  // the second cluster
  expect_read_error(p, "past the end");
}

TEST_F(Qcow2HostileTest, MisalignedL2Entry) {
  auto p = make_image("a.qcow2");
  poke64(p, l2_offset(p), (peek64(p, l2_offset(p)) + 512) | kOflagCopied);
  expect_read_error(p, "not aligned to the cluster size");
}

TEST_F(Qcow2HostileTest, CompressedClusterPastEndOfFile) {
  sh("qemu-img create -q -f raw r.raw 1M && qemu-io -f raw -c 'write -P 0x62 0 1M' r.raw >/dev/null && "
     "qemu-img convert -c -O qcow2 r.raw c.qcow2");
  auto p = path("c.qcow2");
  uint64_t e = peek64(p, l2_offset(p));
  ASSERT_TRUE(e & kOflagCompressed);
  const uint32_t shift = 62 - (16 - 8);
  // The largest sector count: 256 sectors from near the end of the file.
  uint64_t coffset = file_size(p) - 600;
  poke64(p, l2_offset(p), kOflagCompressed | (0xffull << shift) | coffset);
  expect_read_error(p, "compressed cluster");
  // A compressed offset beyond the end of the file.
  poke64(p, l2_offset(p), kOflagCompressed | (file_size(p) + 4096));
  expect_read_error(p, "past the end of the file");
}

TEST_F(Qcow2HostileTest, CorruptCompressedData) {
  sh("qemu-img create -q -f raw r.raw 1M && qemu-io -f raw -c 'write -P 0x62 0 1M' r.raw >/dev/null && "
     "qemu-img convert -c -O qcow2 r.raw c.qcow2");
  auto p = path("c.qcow2");
  uint64_t e = peek64(p, l2_offset(p));
  uint64_t coffset = e & ((1ull << 54) - 1);
  std::vector<uint8_t> junk(64, 0xff);
  poke(p, coffset, junk.data(), junk.size());
  expect_read_error(p, "corrupt");
}

TEST_F(Qcow2HostileTest, ZeroFlagInVersion2) {
  auto p = make_image("a.qcow2", "-o compat=0.10");
  poke64(p, l2_offset(p), peek64(p, l2_offset(p)) | kOflagZero);
  expect_read_error(p, "version 2");
}

TEST_F(Qcow2HostileTest, SubclusterAllocatedAndZero) {
  auto p = make_image("a.qcow2", "-o extended_l2=on");
  poke64(p, l2_offset(p) + 8, 0x0000000100000001ull);
  expect_read_error(p, "both allocated and zero");
}

TEST_F(Qcow2HostileTest, BackingChainLoops) {
  sh("qemu-img create -q -f qcow2 -u -b b.qcow2 -F qcow2 a.qcow2 1M && "
     "qemu-img create -q -f qcow2 -u -b a.qcow2 -F qcow2 b.qcow2 1M");
  expect_open_error(path("a.qcow2"), EINVAL, "loops");
}

TEST_F(Qcow2HostileTest, BackingFileIsItself) {
  sh("qemu-img create -q -f qcow2 -u -b x.qcow2 -F qcow2 s.qcow2 1M");
  set_backing_name(path("s.qcow2"), "s.qcow2");
  expect_open_error(path("s.qcow2"), EINVAL, "loops");
}

TEST_F(Qcow2HostileTest, ChainDeeperThanTheLimit) {
  sh("qemu-img create -q -f qcow2 l0.qcow2 1M && qemu-img create -q -f qcow2 -b l0.qcow2 -F qcow2 l1.qcow2 && "
     "qemu-img create -q -f qcow2 -b l1.qcow2 -F qcow2 l2.qcow2 && "
     "qemu-img create -q -f qcow2 -b l2.qcow2 -F qcow2 l3.qcow2");
  OpenOptions o;
  o.max_chain_depth = 3;
  expect_open_error(path("l3.qcow2"), EINVAL, "deeper than the limit", o);
  o.max_chain_depth = 4;
  EXPECT_TRUE(open_image(path("l3.qcow2"), o).ok());
}

TEST_F(Qcow2HostileTest, BackingNamesThatAreRefused) {
  struct Case {
    const char* name;
    const char* what;
  } cases[] = {
      {"json:{\"file.filename\":\"/etc/passwd\"}", "json:"},
      {"nbd://x", "protocol"},
      {"/etc/passwd", "absolute"},
      {"../outside.qcow2", "leaves the folder"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove(path("t.qcow2"));
    sh("qemu-img create -q -f qcow2 -u -b placeholder.qcow2 -F qcow2 t.qcow2 1M");
    set_backing_name(path("t.qcow2"), c.name);
    expect_open_error(path("t.qcow2"), EPERM, c.what);
  }
}

TEST_F(Qcow2HostileTest, AbsoluteBackingAllowedOnlyWhenAsked) {
  sh("qemu-img create -q -f raw base.raw 1M");
  sh("qemu-img create -q -f qcow2 -b '" + path("base.raw") + "' -F raw t.qcow2");
  expect_open_error(path("t.qcow2"), EPERM, "--allow-external-paths");
  OpenOptions o;
  o.allow_external_paths = true;
  auto dev = open_image(path("t.qcow2"), o);
  EXPECT_TRUE(dev.ok()) << dev.status().message();
}

TEST_F(Qcow2HostileTest, DataFileOutsideTheFolder) {
  sh("qemu-img create -q -f qcow2 -o data_file=d.bin t.qcow2 1M");
  // The data-file extension holds "d.bin"; make it absolute (same length is not needed: the
  // extension is rewritten by qemu-img amend only, so poke a name of equal length).
  std::string img = path("t.qcow2");
  std::vector<uint8_t> first(4096);
  int fd = ::open(img.c_str(), O_RDONLY);
  ASSERT_EQ(::pread(fd, first.data(), first.size(), 0), 4096);
  ::close(fd);
  std::string s(first.begin(), first.end());
  size_t at = s.find("d.bin");
  ASSERT_NE(at, std::string::npos);
  poke(img, at, "/etc/", 5);
  expect_open_error(img, EPERM, "data file");
}

TEST_F(Qcow2HostileTest, UnknownIncompatibleFeature) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffIncompatible, 1ull << 10);
  expect_open_error(p, ENOTSUP, "bit 10");
}

TEST_F(Qcow2HostileTest, EncryptionMethodSet) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffCryptMethod, 1);
  expect_open_error(p, ENOTSUP, "crypt_method");
  poke32(p, kOffCryptMethod, 2);
  expect_open_error(p, ENOTSUP, "LUKS");
}

TEST_F(Qcow2HostileTest, ClusterBitsOutOfRange) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffClusterBits, 8);
  expect_open_error(p, EINVAL, "cluster_bits");
  poke32(p, kOffClusterBits, 22);
  expect_open_error(p, EINVAL, "cluster_bits");
}

TEST_F(Qcow2HostileTest, HeaderLengthTooBig) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffHeaderLength, 1 << 20);
  expect_open_error(p, EINVAL, "header_length");
  poke32(p, kOffHeaderLength, 50);
  expect_open_error(p, EINVAL, "header_length");
}

TEST_F(Qcow2HostileTest, TruncatedHeader) {
  auto p = make_image("a.qcow2");
  fs::resize_file(p, 90);  // a version 3 header needs 104 bytes
  expect_open_error(p, EINVAL, "too short");
  fs::resize_file(p, 40);
  // 40 bytes of "QFI\xfb...": probing still says qcow2 and the driver refuses it.
  expect_open_error(p, EINVAL, "too short");
}

TEST_F(Qcow2HostileTest, RefcountOrderTooBig) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffRefcountOrder, 7);
  expect_open_error(p, EINVAL, "refcount_order");
}

TEST_F(Qcow2HostileTest, HeaderExtensionTooLarge) {
  auto p = make_image("a.qcow2");
  // The first extension follows the 112-byte header qemu writes; give it a huge length.
  poke32(p, 112 + 4, 0x7fffffff);
  expect_open_error(p, EINVAL, "header extension");
}

TEST_F(Qcow2HostileTest, BackingNameTooLong) {
  sh("qemu-img create -q -f qcow2 -u -b x.qcow2 -F qcow2 t.qcow2 1M");
  poke32(path("t.qcow2"), kOffBackingFileSize, 4000);
  expect_open_error(path("t.qcow2"), EINVAL, "backing_file_size");
}

TEST_F(Qcow2HostileTest, UnknownVersion) {
  auto p = make_image("a.qcow2");
  poke32(p, kOffVersion, 4);
  expect_open_error(p, ENOTSUP, "version");
}

TEST_F(Qcow2HostileTest, DirtyImagesReadButRefuseWrites) {
  auto p = make_image("a.qcow2", "-o lazy_refcounts=on");
  poke64(p, kOffIncompatible, kIncompatDirty);
  auto dev = open_image(p);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_TRUE((*dev)->info().dirty);
  std::vector<uint8_t> buf(4096);
  ASSERT_TRUE((*dev)->read(0, buf).ok());
  EXPECT_EQ(buf[0], 0x61);
  OpenOptions o;
  o.writable = true;
  expect_open_error(p, ENOTSUP, "dirty", o);
}

TEST_F(Qcow2HostileTest, CorruptBitReportedAndReadOnly) {
  auto p = make_image("a.qcow2");
  poke64(p, kOffIncompatible, kIncompatCorrupt);
  auto dev = open_image(p);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_TRUE((*dev)->info().corrupt);
  OpenOptions o;
  o.writable = true;
  expect_open_error(p, EROFS, "corrupt", o);
}

// Random bytes poked into the metadata clusters of a compressed image with a backing file and an
// extended-L2 image: every open, read and extents call either works or fails with a clear error;
// ASan/UBSan catch anything worse.
TEST_F(Qcow2HostileTest, RandomMetadataCorruptionNeverCrashes) {
  sh("qemu-img create -q -f raw base.raw 2M && qemu-io -f raw -c 'write -P 0x33 0 2M' base.raw >/dev/null && "
     "qemu-img convert -c -O qcow2 -o cluster_size=4k base.raw c.qcow2 && "
     "qemu-img create -q -f qcow2 -b c.qcow2 -F qcow2 -o cluster_size=4k top.qcow2 && "
     "qemu-io -f qcow2 -c 'write -P 0x44 8k 100k' -c 'write -z 300k 64k' top.qcow2 >/dev/null && "
     "qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k -b base.raw -F raw x.qcow2 && "
     "qemu-io -f qcow2 -c 'write -P 0x55 5000 70000' -c 'write -z 200k 20k' x.qcow2 >/dev/null");
  std::mt19937_64 rng(2024);
  int opened = 0, failed_reads = 0;
  for (const char* name : {"c.qcow2", "top.qcow2", "x.qcow2"}) {
    const std::string orig = path(name), victim = path(std::string("v-") + name);
    for (int iter = 0; iter < 80; ++iter) {
      fs::copy_file(orig, victim, fs::copy_options::overwrite_existing);
      // Metadata lives in the first clusters: header, L1, refcounts, L2 tables.
      const uint64_t span = std::min<uint64_t>(fs::file_size(victim), 64 << 10);
      for (int k = 0; k < 1 + int(rng() % 4); ++k) {
        uint8_t b = static_cast<uint8_t>(rng());
        poke(victim, rng() % span, &b, 1);
      }
      auto dev = open_image(victim);
      if (!dev.ok()) {
        EXPECT_FALSE(dev.status().message().empty());
        continue;
      }
      ++opened;
      BlockDevice& d = **dev;
      std::vector<uint8_t> buf(std::min<uint64_t>(d.size(), 2 << 20));
      Status st = d.read(0, buf);
      if (!st.ok()) {
        ++failed_reads;
        EXPECT_TRUE(st.code() == EINVAL || st.code() == EIO || st.code() == ENOTSUP) << st.message();
        EXPECT_FALSE(st.message().empty());
      }
      std::vector<Extent> ex;
      Status es = d.extents(0, std::min<uint64_t>(d.size(), 64 << 20), ex);
      if (es.ok()) {
        uint64_t pos = 0;
        for (const auto& e : ex) {
          EXPECT_EQ(e.offset, pos);
          pos += e.length;
        }
        EXPECT_EQ(pos, std::min<uint64_t>(d.size(), 64 << 20));
      }
    }
  }
  // The corpus exercises both paths: some damaged images open, some reads fail.
  EXPECT_GT(opened, 0);
  EXPECT_GT(failed_reads, 0);
}

}  // namespace
}  // namespace vdkit
