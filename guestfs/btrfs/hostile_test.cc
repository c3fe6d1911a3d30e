// Hostile Btrfs images: each damage is refused with a message naming what is wrong, never a crash, hang or read
// outside the image. Blocks are edited and (where the point is a structural lie, not a bad checksum) re-checksummed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/btrfs/btrfs_tree.h"

namespace vdkit::guestfs::btrfs {
namespace {

const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

class BtrfsHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::run(kPath + "command -v mkfs.btrfs") != 0) GTEST_SKIP() << "mkfs.btrfs (btrfs-progs) is not installed";
    char tmpl[] = "/tmp/vdkit-btrfs-hostile.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/fs.img";
  }
  void TearDown() override {
    if (!dir_.empty()) (void)test::run("rm -rf " + dir_);
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run(kPath + "set -e; " + cmd, &out), 0) << cmd << "\n" << out;
  }
  // An image with `files` small files (400 give the fs tree an internal node) and one big one.
  void make(const std::string& mkfs_opts, int files = 20) {
    sh("mkdir -p " + dir_ + "/src/d && cd " + dir_ + "/src/d && for i in $(seq " + std::to_string(files) +
       "); do echo file-$i > f$i; done && head -c 300000 /dev/urandom > " + dir_ + "/src/big");
    sh("rm -f " + img_ + " && truncate -s 160M " + img_ + " && mkfs.btrfs -q " + mkfs_opts + " -r " + dir_ + "/src " + img_);
  }
  Result<std::shared_ptr<BtrfsTree>> open() {
    auto dev = open_image(img_);
    if (!dev.ok()) return dev.status();
    return BtrfsTree::open(std::shared_ptr<BlockDevice>(std::move(*dev)), "hostile image");
  }
  std::unique_ptr<BtrfsVolume> volume() {
    auto dev = open_image(img_);
    EXPECT_TRUE(dev.ok());
    auto v = BtrfsVolume::open(std::shared_ptr<BlockDevice>(std::move(*dev)), "x");
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? std::move(*v) : nullptr;
  }
  std::vector<uint8_t> read_at(uint64_t off, size_t n) {
    std::vector<uint8_t> b(n);
    std::ifstream f(img_, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(off));
    f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    return b;
  }
  void write_at(uint64_t off, const std::vector<uint8_t>& b) {
    std::fstream f(img_, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(off));
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  void recsum(std::vector<uint8_t>& b) {
    auto c = Checksum::for_type(kCsumCrc32c);
    uint8_t sum[kCsumSize];
    c->compute(std::span<const uint8_t>(b.data() + kCsumSize, b.size() - kCsumSize), sum);
    std::copy_n(sum, kCsumSize, b.data());
  }
  // Edits tree block `logical` in every copy, re-checksumming unless told not to.
  void patch_block(BtrfsVolume& v, uint64_t logical, const std::function<void(std::vector<uint8_t>&)>& edit,
                   bool fix_csum = true) {
    for (const Chunk& c : v.chunks()) {
      if (logical < c.logical || logical >= c.logical + c.length) continue;
      for (uint64_t base : c.copies) {
        uint64_t phys = base + (logical - c.logical);
        auto b = read_at(phys, v.super().nodesize);
        edit(b);
        if (fix_csum) recsum(b);
        write_at(phys, b);
      }
    }
  }
  void patch_super(const std::function<void(std::vector<uint8_t>&)>& edit) {
    auto b = read_at(kSuperOffset, kSuperSize);
    edit(b);
    recsum(b);
    write_at(kSuperOffset, b);
  }
  void expect_refused(const std::string& needle) {
    auto t = open();
    ASSERT_FALSE(t.ok()) << "opened a damaged image";
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status().message();
  }
  // The fs tree's root block (the top-level subvolume).
  TreeRoot fs_root(BtrfsVolume& v) {
    auto r = find_tree_root(v, kFsTreeObjectid);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : TreeRoot{};
  }
  std::string dir_, img_;
};

TEST_F(BtrfsHostile, Truncated) {
  make("");
  sh("truncate -s 40M " + img_);
  expect_refused("past the end of the device");
  sh("truncate -s 60K " + img_);
  expect_refused("too small to hold it");
}

TEST_F(BtrfsHostile, SuperblockChecksumAndFields) {
  make("");
  auto b = read_at(kSuperOffset, kSuperSize);
  b[0x200] ^= 1;
  write_at(kSuperOffset, b);
  expect_refused("superblock at offset 65536: crc32c checksum mismatch");
  patch_super([](std::vector<uint8_t>& s) { s[0x200] ^= 1; });
  ASSERT_TRUE(open().ok());
  patch_super([](std::vector<uint8_t>& s) { store_le32(s.data() + sb::kNodeSize, 12345); });
  expect_refused("field nodesize is 12345");
  patch_super([](std::vector<uint8_t>& s) { store_le32(s.data() + sb::kNodeSize, 16384); store_le64(s.data() + sb::kIncompat, 1ull << 40); });
  expect_refused("unknown incompatible feature bits");
  auto c = read_at(kSuperOffset, kSuperSize);
  store_le16(c.data() + sb::kCsumType, 9);
  write_at(kSuperOffset, c);
  expect_refused("checksum type 9");
}

TEST_F(BtrfsHostile, TreeBlockChecksumWithAndWithoutDup) {
  make("-m dup");
  {
    auto v = volume();
    ASSERT_TRUE(v);
    // One copy of the root tree broken: the other copy serves.
    const Chunk* c = nullptr;
    for (const Chunk& ch : v->chunks())
      if (v->super().root >= ch.logical && v->super().root < ch.logical + ch.length) c = &ch;
    ASSERT_TRUE(c && c->copies.size() == 2);
    uint64_t phys = c->copies[0] + (v->super().root - c->logical);
    auto b = read_at(phys, v->super().nodesize);
    b[200] ^= 0xff;
    write_at(phys, b);
  }
  ASSERT_TRUE(open().ok()) << "DUP metadata: the second copy must be used";
  {
    auto v = volume();
    patch_block(*v, v->super().root, [](std::vector<uint8_t>& b) { b[300] ^= 0xff; }, false);
  }
  expect_refused("crc32c checksum mismatch");
}

TEST_F(BtrfsHostile, TreeLoopsAndBadPointers) {
  make("-m single", 400);
  std::unique_ptr<BtrfsVolume> v = volume();
  ASSERT_TRUE(v);
  TreeRoot fs = fs_root(*v);
  ASSERT_GE(fs.level, 1) << "400 files should give the fs tree an internal node";
  // The root node's first child pointer at the node itself: a loop.
  patch_block(*v, fs.bytenr, [&](std::vector<uint8_t>& b) {
    store_le64(b.data() + hdr::kSize + kKeySize, fs.bytenr);
  });
  expect_refused("level " + std::to_string(fs.level) + ", expected " + std::to_string(fs.level - 1));
  // A child pointer that is right, with the generation wrong.
  v = nullptr;
  make("-m single", 400);
  v = volume();
  fs = fs_root(*v);
  patch_block(*v, fs.bytenr, [&](std::vector<uint8_t>& b) {
    uint8_t* gen = b.data() + hdr::kSize + kKeySize + 8;
    store_le64(gen, load_le64(gen) + 7);
  });
  expect_refused("expected");
}

TEST_F(BtrfsHostile, HugeItemCountsAndDisorder) {
  make("-m single");
  auto v = volume();
  ASSERT_TRUE(v);
  TreeRoot fs = fs_root(*v);
  patch_block(*v, fs.bytenr, [](std::vector<uint8_t>& b) { store_le32(b.data() + hdr::kNritems, 0x7fffffff); });
  expect_refused("nritems 2147483647 cannot fit in the block");
  patch_block(*v, fs.bytenr, [](std::vector<uint8_t>& b) {
    store_le32(b.data() + hdr::kNritems, 3);
    // Swap the first two item keys.
    uint8_t* a = b.data() + hdr::kSize;
    std::swap_ranges(a, a + kKeySize, a + kItemSize);
  });
  expect_refused("keys out of order");
}

TEST_F(BtrfsHostile, OverlappingChunks) {
  make("");
  // A second system chunk in the superblock's array, overlapping the first by one sector.
  patch_super([](std::vector<uint8_t>& s) {
    uint32_t size = load_le32(s.data() + sb::kSysChunkArraySize);
    std::vector<uint8_t> first(s.begin() + sb::kSysChunkArray, s.begin() + sb::kSysChunkArray + size);
    Key k = Key::load(first.data());
    store_le64(first.data() + 9, k.offset + 4096);
    std::copy(first.begin(), first.end(), s.begin() + sb::kSysChunkArray + size);
    store_le32(s.data() + sb::kSysChunkArraySize, size * 2);
  });
  expect_refused("overlaps another chunk");
}

TEST_F(BtrfsHostile, StripedProfileWithoutItsDevices) {
  sh("mkdir -p " + dir_ + "/src && truncate -s 300M " + img_ + " " + img_ + "2 && mkfs.btrfs -q -f -d raid0 -m raid1 " +
     img_ + " " + img_ + "2");
  expect_refused("RAID0 over devices 1, 2");
  auto t = open();
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not part of this image"), std::string::npos);
}

}  // namespace
}  // namespace vdkit::guestfs::btrfs
