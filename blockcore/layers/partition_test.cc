// Tests for the partition-table readers: tables made by sfdisk (compared with sfdisk --json), and hostile tables.
#include "blockcore/layers/partition.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "blockcore/testing/test_shell.h"
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "blockcore/sources/image.h"

namespace vdkit {
namespace {

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdkit-parttest.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/disk.img";
    ASSERT_EQ(0, system(("truncate -s 64M " + img_).c_str()));
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }

  void sfdisk(const std::string& script) {
    int st = 0;
    std::string out = test::output_of("printf '" + script + "' | sfdisk -q " + img_ + " 2>&1", &st);
    ASSERT_EQ(st, 0) << out;
  }
  Result<std::vector<Partition>> table() {
    auto dev = open_image(img_, OpenOptions{});
    if (!dev.ok()) return dev.status();
    return read_partition_table(**dev);
  }
  void poke(uint64_t off, const void* data, size_t n) {
    int fd = open(img_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, data, n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    close(fd);
  }
  // sfdisk's own view: node number -> (start sector, size in sectors, type).
  std::map<int, std::tuple<uint64_t, uint64_t, std::string>> peer() {
    auto j = nlohmann::json::parse(test::output_of("sfdisk --json " + img_));
    std::map<int, std::tuple<uint64_t, uint64_t, std::string>> m;
    for (auto& p : j["partitiontable"]["partitions"]) {
      std::string node = p["node"];
      int n = std::stoi(node.substr(img_.size()));
      std::string type = p["type"];
      m[n] = {p["start"].get<uint64_t>(), p["size"].get<uint64_t>(), type};
    }
    return m;
  }

  std::string dir_, img_;
};

TEST_F(PartitionTest, NoTableOnBlankOrFileSystemDisk) {
  auto t = table();
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->empty());
  int st = 0;
  test::output_of("mkfs.ext4 -q -F " + img_ + " 2>&1", &st);
  ASSERT_EQ(st, 0);
  t = table();
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->empty());
}

TEST_F(PartitionTest, MbrWithLogicalPartitionsMatchesSfdisk) {
  sfdisk("label: dos\\nlabel-id: 0x12345678\\n,8M,83,*\\n,8M,82\\n,,5\\n,4M,83\\n,4M,7\\n,,83\\n");
  auto t = table();
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto want = peer();
  ASSERT_EQ(t->size(), want.size());
  for (const auto& p : *t) {
    ASSERT_TRUE(want.count(p.number)) << p.number;
    auto [start, size, type] = want[p.number];
    EXPECT_EQ(p.offset, start * 512) << p.number;
    EXPECT_EQ(p.length, size * 512) << p.number;
    EXPECT_EQ(std::stoul(p.type, nullptr, 16), std::stoul(type, nullptr, 16)) << p.number;
    EXPECT_EQ(p.scheme, "mbr");
  }
  EXPECT_TRUE((*t)[0].bootable);
  EXPECT_EQ((*t)[0].uuid, "12345678-01");
  EXPECT_EQ(t->back().number, 7);
}

TEST_F(PartitionTest, GptMatchesSfdiskAndFallsBackToTheBackupHeader) {
  sfdisk(
      "label: gpt\\nsize=8M, type=L, name=root\\nsize=16M, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap\\ntype=L, name=data\\n");
  auto t = table();
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto j = nlohmann::json::parse(test::output_of("sfdisk --json " + img_));
  auto& parts = j["partitiontable"]["partitions"];
  ASSERT_EQ(t->size(), parts.size());
  for (size_t i = 0; i < t->size(); ++i) {
    EXPECT_EQ((*t)[i].offset, parts[i]["start"].get<uint64_t>() * 512);
    EXPECT_EQ((*t)[i].length, parts[i]["size"].get<uint64_t>() * 512);
    std::string type = parts[i]["type"], uuid = parts[i]["uuid"];
    for (auto& c : type) c = static_cast<char>(tolower(c));
    for (auto& c : uuid) c = static_cast<char>(tolower(c));
    EXPECT_EQ((*t)[i].type, type);
    EXPECT_EQ((*t)[i].uuid, uuid);
    EXPECT_EQ((*t)[i].name, parts[i]["name"].get<std::string>());
    EXPECT_EQ((*t)[i].scheme, "gpt");
  }
  // Break the primary header's CRC: the backup at the end of the disk takes over.
  uint8_t junk[4] = {1, 2, 3, 4};
  poke(512 + 16, junk, 4);
  auto t2 = table();
  ASSERT_TRUE(t2.ok()) << t2.status().message();
  EXPECT_EQ(t2->size(), t->size());
  // Break the backup's entry array too (it sits just before the backup header): a clear error.
  poke(64 * 1024 * 1024 - 512 - 32 * 512, junk, 4);
  auto t3 = table();
  ASSERT_FALSE(t3.ok());
  EXPECT_NE(t3.status().message().find("CRC32"), std::string::npos) << t3.status().message();
}

TEST_F(PartitionTest, HostileMbrTablesGiveErrors) {
  sfdisk("label: dos\\n,8M,83\\n,,5\\n,4M,83\\n,4M,83\\n");
  ASSERT_TRUE(table().ok());
  // Point the second EBR's "next" link back at the first EBR: a loop.
  auto dev = open_image(img_, OpenOptions{});
  ASSERT_TRUE(dev.ok());
  uint8_t mbr[512];
  ASSERT_TRUE((*dev)->read(0, mbr).ok());
  uint32_t ext_start = mbr[446 + 16 + 8] | mbr[446 + 16 + 9] << 8 | mbr[446 + 16 + 10] << 16 | mbr[446 + 16 + 11] << 24;
  uint8_t ebr[512];
  ASSERT_TRUE((*dev)->read(uint64_t{ext_start} * 512, ebr).ok());
  uint32_t second = ebr[446 + 16 + 8] | ebr[446 + 16 + 9] << 8 | ebr[446 + 16 + 10] << 16 | ebr[446 + 16 + 11] << 24;
  ASSERT_NE(second, 0u);
  uint8_t loop_entry[16] = {0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};  // next EBR at offset 0 again
  poke((uint64_t{ext_start} + second) * 512 + 446 + 16, loop_entry, 16);
  auto t = table();
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("loops"), std::string::npos) << t.status().message();

  // A primary entry that runs past the end of the disk.
  uint8_t big[4] = {0xff, 0xff, 0xff, 0x0f};
  poke(446 + 12, big, 4);
  t = table();
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("MBR entry 1"), std::string::npos) << t.status().message();
}

TEST_F(PartitionTest, ViewForwardsWithTheOffsetAndClipsExtents) {
  sfdisk("label: dos\\n2048,4096,83\\n");
  int fd = open(img_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string marker = "partition-one-data";
  ASSERT_EQ(pwrite(fd, marker.data(), marker.size(), 2048 * 512 + 4096), static_cast<ssize_t>(marker.size()));
  close(fd);
  auto dev = open_image(img_, OpenOptions{});
  ASSERT_TRUE(dev.ok());
  std::shared_ptr<BlockDevice> base = std::move(*dev);
  auto t = read_partition_table(*base);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  auto view = make_partition_view(base, (*t)[0].offset, (*t)[0].length);
  EXPECT_EQ(view->size(), 4096u * 512);
  std::string got(marker.size(), '\0');
  ASSERT_TRUE(view->read(4096, std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()), got.size())).ok());
  EXPECT_EQ(got, marker);
  std::vector<Extent> ex;
  ASSERT_TRUE(view->extents(0, view->size(), ex).ok());
  ASSERT_FALSE(ex.empty());
  EXPECT_EQ(ex.front().offset, 0u);
  EXPECT_EQ(ex.back().offset + ex.back().length, view->size());
  uint8_t b[1];
  EXPECT_FALSE(view->read(view->size(), b).ok());
  EXPECT_EQ(view->write(0, b).code(), EROFS);
}

}  // namespace
}  // namespace vdkit

namespace vdkit {
namespace {

TEST_F(PartitionTest, TableRangesAreTheMbrTheEbrChainAndTheGptAreas) {
  sfdisk("label: dos\\n,8M,83\\n,,5\\n,4M,83\\n,4M,82\\n,,83\\n");
  auto dev = open_image(img_, OpenOptions{});
  ASSERT_TRUE(dev.ok());
  ByteRanges ranges;
  auto t = read_partition_table(**dev, &ranges);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(ranges.size(), 4u);  // the MBR and one EBR per logical partition
  EXPECT_EQ(ranges[0], std::make_pair(uint64_t{0}, uint64_t{512}));
  uint64_t ext_start = 0;
  for (const auto& p : *t)
    if (is_extended_container(p)) ext_start = p.offset;
  EXPECT_EQ(ranges[1].first, ext_start);
  for (size_t i = 1; i < ranges.size(); ++i) {
    EXPECT_EQ(ranges[i].second, 512u);
    uint8_t sig[2];
    ASSERT_TRUE((*dev)->read(ranges[i].first + 510, sig).ok());
    EXPECT_EQ(sig[0], 0x55);
    EXPECT_EQ(sig[1], 0xaa);
    // Each EBR lies just before its logical partition, outside every logical partition.
    for (const auto& p : *t) {
      if (p.number < 5) continue;
      EXPECT_FALSE(ranges[i].first >= p.offset && ranges[i].first < p.offset + p.length);
    }
  }

  sfdisk("label: gpt\\nsize=8M, type=L\\ntype=L\\n");
  auto dev2 = open_image(img_, OpenOptions{});
  ASSERT_TRUE(dev2.ok());
  ASSERT_TRUE(read_partition_table(**dev2, &ranges).ok());
  auto j = nlohmann::json::parse(test::output_of("sfdisk --json " + img_));
  uint64_t first = j["partitiontable"]["firstlba"], last = j["partitiontable"]["lastlba"];
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], std::make_pair(uint64_t{0}, first * 512));
  EXPECT_EQ(ranges[1], std::make_pair((last + 1) * 512, (64u << 20) - (last + 1) * 512));
}

}  // namespace
}  // namespace vdkit
