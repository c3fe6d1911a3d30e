// The ext2/3/4 map of unused blocks against dumpe2fs: the same free block count and exactly the same free runs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "blockcore/testing/memory_device.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/ext2/ext2_guest_fs.h"
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit::guestfs {
namespace {

const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

struct Dumpe2fs {
  uint64_t block_size = 0;
  uint64_t free_blocks = 0;  // the superblock's count
  ByteRanges free;           // every group's "Free blocks:" runs, merged, in bytes
};

// "12-15, 20" -> {12,15},{20,20}
void parse_runs(const std::string& list, uint64_t bs, ByteRanges& out) {
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    item.erase(0, item.find_first_not_of(' '));
    if (item.empty()) continue;
    uint64_t a = std::stoull(item), b = a;
    if (auto dash = item.find('-'); dash != std::string::npos) b = std::stoull(item.substr(dash + 1));
    uint64_t off = a * bs, len = (b - a + 1) * bs;
    if (!out.empty() && out.back().first + out.back().second == off)
      out.back().second += len;  // runs continue across group boundaries
    else
      out.emplace_back(off, len);
  }
}

Dumpe2fs dumpe2fs(const std::string& img) {
  std::string text;
  EXPECT_EQ(test::run(kPath + "dumpe2fs " + img + " 2>/dev/null", &text), 0) << text;
  Dumpe2fs d;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Block size:", 0) == 0) d.block_size = std::stoull(line.substr(line.find(':') + 1));
    if (line.rfind("Free blocks:", 0) == 0) d.free_blocks = std::stoull(line.substr(line.find(':') + 1));
    if (line.rfind("  Free blocks: ", 0) == 0) parse_runs(line.substr(15), d.block_size, d.free);
  }
  return d;
}

class Ext2FreeSpaceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (test::run(kPath + "command -v mkfs.ext4 && " + kPath + "command -v dumpe2fs") != 0)
      GTEST_SKIP() << "mkfs.ext4 or dumpe2fs (e2fsprogs) is not installed";
    char tmpl[] = "/tmp/vdkit-freespace.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Files of several sizes, one of them removed afterwards, so the free blocks are not one run at the end.
    std::string tree = dir_ + "/tree";
    ASSERT_EQ(test::run("mkdir -p " + tree + "/etc " + tree + "/var && head -c 300000 /dev/urandom > " + tree +
                        "/var/big && head -c 100000 /dev/urandom > " + tree + "/var/gone && head -c 5000 " +
                        "/dev/urandom > " + tree + "/var/small && echo hi > " + tree + "/etc/tiny"),
              0);
    img_ = dir_ + "/fs.img";
    std::string out;
    ASSERT_EQ(test::run("truncate -s 24M " + img_ + " && " + kPath + GetParam() + " -q -F -d " + tree + " " + img_ +
                            " && " + kPath + "debugfs -w -R 'rm /var/gone' " + img_,
                        &out),
              0)
        << out;
  }
  void TearDown() override {
    if (!dir_.empty()) (void)test::run("rm -rf " + dir_);
  }

  std::shared_ptr<MemoryDevice> load() {
    std::ifstream f(img_, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return std::make_shared<MemoryDevice>(std::move(bytes));
  }
  void save(MemoryDevice& dev) {
    std::ofstream(img_, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(dev.bytes().data()), static_cast<std::streamsize>(dev.bytes().size()));
  }

  std::string dir_, img_;
};

TEST_P(Ext2FreeSpaceTest, MatchesDumpe2fs) {
  Dumpe2fs want = dumpe2fs(img_);
  ASSERT_GT(want.free.size(), 1u) << "the image should have several free runs";
  auto vol = Ext2Volume::Open(load(), false);
  ASSERT_TRUE(vol.ok()) << vol.status().message();
  ByteRanges got;
  auto count = (*vol)->UnusedRanges(got);
  ASSERT_TRUE(count.ok()) << count.status().message();
  EXPECT_EQ(*count, want.free_blocks);
  EXPECT_EQ(got, want.free);
  uint64_t bytes = 0;
  for (const auto& r : got) bytes += r.second;
  EXPECT_EQ(bytes, *count * want.block_size);
}

// A writable volume answers from its bitmap in memory: after a write (flushed by Close) dumpe2fs agrees again.
TEST_P(Ext2FreeSpaceTest, FollowsWritesAndIsWhatTheGuestFsOffers) {
  auto dev = load();
  ByteRanges before, after;
  {
    auto vol = Ext2Volume::Open(dev, true);
    ASSERT_TRUE(vol.ok()) << vol.status().message();
    std::shared_ptr<Ext2Volume> v(std::move(*vol));
    Ext2GuestFs gfs(v, "test");
    ASSERT_NE(gfs.free_space(), nullptr);
    ASSERT_TRUE(gfs.free_space()->unused_ranges(before).ok());
    ASSERT_TRUE(gfs.write_file("/var/more", std::string(2 << 20, 'm')).ok());
    ASSERT_TRUE(gfs.write_file("/var/big", "shrunk").ok());
    ASSERT_TRUE(gfs.free_space()->unused_ranges(after).ok());
    ASSERT_TRUE(v->Close().ok());
  }
  EXPECT_NE(before, after);
  save(*dev);
  Dumpe2fs want = dumpe2fs(img_);
  EXPECT_EQ(after, want.free);
}

INSTANTIATE_TEST_SUITE_P(Mkfs, Ext2FreeSpaceTest,
                         ::testing::Values("mkfs.ext4 -b 4096", "mkfs.ext4 -b 1024", "mkfs.ext3 -b 2048",
                                           "mkfs.ext2 -b 1024"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace vdkit::guestfs
