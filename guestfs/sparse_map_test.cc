// build_sparse_map on disks made by sfdisk, mkfs.ext4, mkswap: what is left out, what is kept, and why.
#include "guestfs/sparse_map.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "blockcore/layers/masked.h"
#include "blockcore/layers/partition.h"
#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/probe.h"

namespace vdkit::guestfs {
namespace {

const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

class SparseMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::run(kPath + "command -v mkfs.ext4 && " + kPath + "command -v mkswap && " + kPath +
                  "command -v sfdisk && " + kPath + "command -v dumpe2fs") != 0)
      GTEST_SKIP() << "mkfs.ext4, mkswap, sfdisk or dumpe2fs is not installed";
    char tmpl[] = "/tmp/vdkit-sparsemap.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/disk.img";
  }
  void TearDown() override {
    if (!dir_.empty()) (void)test::run("rm -rf " + dir_);
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run(kPath + cmd, &out), 0) << cmd << "\n" << out;
  }
  // Writes the file `part` into partition n of the disk.
  void put(const std::string& part, const Partition& p) {
    sh("dd if=" + part + " of=" + img_ + " bs=512 seek=" + std::to_string(p.offset / 512) +
       " conv=notrunc status=none");
  }
  std::shared_ptr<BlockDevice> open() {
    auto d = open_image(img_, OpenOptions{});
    EXPECT_TRUE(d.ok());
    return std::shared_ptr<BlockDevice>(std::move(*d));
  }
  // Writes `bytes` at byte `offset` of `file`, in place.
  void poke(const std::string& file, uint64_t offset, const std::string& bytes) {
    std::FILE* f = std::fopen(file.c_str(), "r+b");
    ASSERT_NE(f, nullptr) << file;
    ASSERT_EQ(std::fseek(f, static_cast<long>(offset), SEEK_SET), 0);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  uint64_t ext_free_bytes(const std::string& fs) {
    std::string text = test::output_of(kPath + "dumpe2fs -h " + fs + " 2>/dev/null");
    auto field = [&](const std::string& name) {
      auto at = text.find("\n" + name + ":");
      return std::stoull(text.substr(text.find(':', at + 1) + 1));
    };
    return field("Free blocks") * field("Block size");
  }
  std::string dir_, img_;
};

// An MBR or EBR sector with the given {type, first sector, sectors} entries, written by hand where sfdisk would refuse
// the layout.
struct TableEntry {
  uint8_t type;
  uint32_t start, sectors;
};
std::string table_sector(std::initializer_list<TableEntry> entries) {
  std::string sec(512, '\0');
  int i = 0;
  for (const TableEntry& t : entries) {
    char* e = sec.data() + 446 + 16 * i++;
    e[4] = static_cast<char>(t.type);
    for (int b = 0; b < 4; ++b) {
      e[8 + b] = static_cast<char>(t.start >> (8 * b));
      e[12 + b] = static_cast<char>(t.sectors >> (8 * b));
    }
  }
  sec[510] = '\x55';
  sec[511] = '\xaa';
  return sec;
}

const VolumeSparseReport* volume(const SparseMap& m, int n) {
  for (const auto& v : m.volumes)
    if (v.partition == n) return &v;
  return nullptr;
}

TEST_F(SparseMapTest, MbrWithLogicalPartitionsSwapHibernationDirtyJournalAndUnknown) {
  sh("truncate -s 64M " + img_ +
     " && printf 'label: dos\\n,8M,83\\n,4M,82\\n,,5\\n,4M,83\\n,4M,83\\n,4M,82\\n' | "
     "sfdisk -q " +
     img_);
  auto disk = open();
  ByteRanges table;
  auto parts = read_partition_table(*disk, &table);
  ASSERT_TRUE(parts.ok());
  auto part = [&](int n) {
    for (const auto& p : *parts)
      if (p.number == n) return p;
    return Partition{};
  };
  // 1: ext4 aged (files written, half removed); 2: swap; 5: ext4 whose journal needs recovery; 6: random bytes;
  // 7: swap holding a hibernation image; the gap before partition 1 holds a boot loader's bytes.
  sh("mkdir -p " + dir_ + "/t && for i in 1 2 3 4 5 6; do head -c 300000 /dev/urandom > " + dir_ +
     "/t/f$i; done && truncate -s 8M " + dir_ + "/p1 && mkfs.ext4 -q -F -d " + dir_ + "/t " + dir_ +
     "/p1 && debugfs -w -R 'rm /f2' " + dir_ + "/p1 && debugfs -w -R 'rm /f4' " + dir_ + "/p1");
  put(dir_ + "/p1", part(1));
  sh("truncate -s 4M " + dir_ + "/p2 && mkswap -q -L sw -U 11111111-2222-3333-4444-555555555555 " + dir_ + "/p2");
  put(dir_ + "/p2", part(2));
  sh("truncate -s 4M " + dir_ + "/p5 && mkfs.ext4 -q -F " + dir_ + "/p5 && debugfs -w -R 'feature needs_recovery' " +
     dir_ + "/p5");
  put(dir_ + "/p5", part(5));
  sh("head -c 4M /dev/urandom > " + dir_ + "/p6");
  put(dir_ + "/p6", part(6));
  sh("truncate -s 4M " + dir_ + "/p7 && mkswap -q " + dir_ + "/p7 && printf 'S1SUSPEND\\0' | dd of=" + dir_ +
     "/p7 bs=1 seek=4086 conv=notrunc status=none");
  put(dir_ + "/p7", part(7));
  sh("head -c 100000 /dev/urandom | dd of=" + img_ + " bs=512 seek=1 conv=notrunc status=none");

  auto m = build_sparse_map(open());
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->volumes.size(), 5u);  // 1, 2, 5, 6, 7: not the extended container
  const auto* v1 = volume(*m, 1);
  ASSERT_TRUE(v1 && v1->mapped) << sparse_summary(*m);
  EXPECT_EQ(v1->type, "ext4");
  EXPECT_EQ(v1->unused_bytes, ext_free_bytes(dir_ + "/p1"));
  const auto* v2 = volume(*m, 2);
  ASSERT_TRUE(v2 && v2->mapped);
  EXPECT_EQ(v2->unused_bytes, part(2).length - 4096);
  EXPECT_FALSE(volume(*m, 5)->mapped);
  EXPECT_NE(volume(*m, 5)->reason.find("journal needs recovery"), std::string::npos) << volume(*m, 5)->reason;
  EXPECT_FALSE(volume(*m, 6)->mapped);
  EXPECT_EQ(volume(*m, 6)->reason, "unknown content");
  EXPECT_FALSE(volume(*m, 7)->mapped);
  EXPECT_NE(volume(*m, 7)->reason.find("hibernation"), std::string::npos);

  // Kept: the gap before partition 1, every EBR, the swap header, and partitions 5 to 7 whole.
  const auto& u = m->unused;
  EXPECT_EQ(overlap_bytes(u, 0, part(1).offset), 0u);
  for (auto [o, l] : table) EXPECT_EQ(overlap_bytes(u, o, l), 0u) << "table sector at " << o;
  EXPECT_EQ(overlap_bytes(u, part(2).offset, 4096), 0u);
  for (int n : {5, 6, 7}) EXPECT_EQ(overlap_bytes(u, part(n).offset, part(n).length), 0u) << n;
  // Left out: the extended partition's space after the last logical one, and the rest of the extended partition
  // between its EBRs and logical partitions.
  uint64_t end7 = part(7).offset + part(7).length;
  EXPECT_EQ(overlap_bytes(u, end7, (64u << 20) - end7), (64u << 20) - end7);
  EXPECT_GT(m->outside_partitions_bytes, (64u << 20) - end7);
  EXPECT_EQ(m->unused_bytes(), v1->unused_bytes + v2->unused_bytes + m->outside_partitions_bytes);
}

TEST_F(SparseMapTest, GptKeepsBothTablesAndAWholeDiskFileSystemIsOneVolume) {
  sh("truncate -s 32M " + img_ + " && printf 'label: gpt\\nsize=8M, type=L\\n' | sfdisk -q " + img_);
  auto m = build_sparse_map(open());
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->volumes.size(), 1u);
  EXPECT_EQ(m->volumes[0].reason, "unknown content");    // an empty partition: nothing says what is unused
  EXPECT_EQ(overlap_bytes(m->unused, 0, 1u << 20), 0u);  // protective MBR, primary GPT, gap
  EXPECT_EQ(overlap_bytes(m->unused, (32u << 20) - 33 * 512, 33 * 512), 0u);  // backup entries and header
  EXPECT_EQ(m->outside_partitions_bytes, (32u << 20) - (9u << 20) - 33 * 512);

  sh("rm " + img_ + " && truncate -s 16M " + img_ + " && mkfs.ext4 -q -F " + img_);
  auto w = build_sparse_map(open());
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_EQ(w->volumes.size(), 1u);
  EXPECT_EQ(w->volumes[0].partition, 0);
  EXPECT_TRUE(w->volumes[0].mapped);
  EXPECT_EQ(w->unused_bytes(), ext_free_bytes(img_));
  EXPECT_EQ(overlap_bytes(w->unused, 0, 4096), 0u);  // the superblock's block

  // A swap signature beside the superblock: ambiguous, copied whole.
  sh("printf SWAPSPACE2 | dd of=" + img_ + " bs=1 seek=4086 conv=notrunc status=none");
  auto a = build_sparse_map(open());
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_FALSE(a->volumes[0].mapped);
  EXPECT_NE(a->volumes[0].reason.find("ambiguous"), std::string::npos) << a->volumes[0].reason;
  EXPECT_TRUE(a->unused.empty());
}

TEST_F(SparseMapTest, OverlappingPartitionsLeaveNothingOut) {
  // Two MBR entries over the same sectors (sfdisk refuses to write that, so the table is written by hand): one
  // volume's free space may be the other's data, so nothing is left out, not even outside the partitions.
  sh("truncate -s 16M " + img_ + " && truncate -s 8M " + dir_ + "/fs && mkfs.ext4 -q -F " + dir_ +
     "/fs && dd if=" + dir_ + "/fs of=" + img_ + " bs=1M seek=1 conv=notrunc status=none");
  // Entry 1: sectors 2048 + 16384; entry 2: sectors 4096 + 8192, inside entry 1.
  poke(img_, 0, table_sector({{0x83, 2048, 16384}, {0x83, 4096, 8192}}));
  auto disk = open();
  auto parts = read_partition_table(*disk);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->size(), 2u);
  auto m = build_sparse_map(disk);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->unused.empty()) << sparse_summary(*m);
  ASSERT_EQ(m->volumes.size(), 2u);
  for (const auto& v : m->volumes) EXPECT_EQ(v.reason, "partitions overlap");
}

TEST_F(SparseMapTest, AStaleSwapSignatureInsideAnotherFileSystemIsAmbiguous) {
  // probe_fs names swap before Btrfs, NTFS and vfat, so a swap signature left inside one of them (at the end of a
  // 4 KiB page, in Btrfs's unused first 64 KiB or a FAT reserved sector) makes the volume look like swap, whose
  // map leaves out everything after its first page.
  auto check = [&](const std::string& want_other) {
    auto disk = open();
    auto probed = probe_fs(*disk);
    ASSERT_TRUE(probed.ok());
    EXPECT_EQ(probed->type, "swap");  // what the map dispatched on before it looked further
    auto m = build_sparse_map(disk);
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_EQ(m->volumes.size(), 1u);
    EXPECT_FALSE(m->volumes[0].mapped);
    EXPECT_EQ(m->volumes[0].reason, "ambiguous: swap signature and " + want_other);
    EXPECT_TRUE(m->unused.empty()) << sparse_summary(*m);
  };
  if (test::run(kPath + "command -v mkfs.btrfs") == 0) {
    sh("truncate -s 128M " + img_ + " && mkfs.btrfs -q -f " + img_);
    poke(img_, 4086, "SWAPSPACE2");
    check("btrfs");
  }
  // An NTFS boot sector in a swap area's first 1 KiB, which swap leaves to boot code and disk labels.
  sh("rm -f " + img_ + " && truncate -s 8M " + img_ + " && mkswap -q " + img_);
  poke(img_, 3, "NTFS    ");
  check("ntfs");

  // TuxOnIce's binary hibernation header starts the swap area (blkid reads it at byte 0, not at the page's end).
  sh("rm -f " + img_ + " && truncate -s 8M " + img_ + " && mkswap -q " + img_);
  poke(img_, 0, std::string("\xed\xc3\x02\xe9\x98\x56\xe5\x0c", 8));
  auto m = build_sparse_map(open());
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->volumes[0].reason, "the swap area holds a hibernation image");
  EXPECT_TRUE(m->unused.empty());
}

TEST_F(SparseMapTest, ATableSectorInsideAVolumeIsKept) {
  // Logical partition 5 covers the EBR that links partition 6 (each entry alone is valid; sfdisk would not write
  // the pair). Partition 5's ext4 calls that sector free; the EBR must still be copied.
  constexpr uint32_t kExt = 2048, kP5 = 4096, kP5Sectors = 16384, kEbr2 = 12288, kP6 = 20480, kP6Sectors = 8192;
  sh("truncate -s 32M " + img_ + " && truncate -s 8M " + dir_ + "/p5 && mkfs.ext4 -q -F " + dir_ +
     "/p5 && dd if=" + dir_ + "/p5 of=" + img_ + " bs=512 seek=" + std::to_string(kP5) + " conv=notrunc status=none");
  poke(img_, 0, table_sector({{0x05, kExt, 65536 - kExt}}));
  poke(img_, uint64_t{kExt} * 512, table_sector({{0x83, kP5 - kExt, kP5Sectors}, {0x05, kEbr2 - kExt, 1}}));
  poke(img_, uint64_t{kEbr2} * 512, table_sector({{0x83, kP6 - kEbr2, kP6Sectors}}));
  auto disk = open();
  ByteRanges table;
  auto parts = read_partition_table(*disk, &table);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->size(), 3u);  // the extended container, 5 and 6
  const uint64_t ebr2 = uint64_t{kEbr2} * 512;
  ASSERT_GT(overlap_bytes(normalize_ranges(table, disk->size()), ebr2, 512), 0u);
  // The precondition that makes this test mean something: ext4's own map calls the EBR's sector unused.
  auto own = open_volume_free_space("ext4", make_partition_view(disk, uint64_t{kP5} * 512, uint64_t{kP5Sectors} * 512));
  ASSERT_TRUE(own.ok() && own->map);
  ByteRanges free5;
  ASSERT_TRUE(own->map->unused_ranges(free5).ok());
  ASSERT_EQ(overlap_bytes(free5, ebr2 - uint64_t{kP5} * 512, 512), 512u);

  auto m = build_sparse_map(disk);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const auto* v5 = volume(*m, 5);
  ASSERT_TRUE(v5 && v5->mapped) << sparse_summary(*m);
  for (auto [o, l] : table) EXPECT_EQ(overlap_bytes(m->unused, o, l), 0u) << "table sector at " << o;
  // The report counts what is left out, the EBR's sector not included.
  EXPECT_EQ(v5->unused_bytes, ext_free_bytes(dir_ + "/p5") - 512);
  EXPECT_EQ(m->unused_bytes(), v5->unused_bytes + m->outside_partitions_bytes);
}

TEST_F(SparseMapTest, APartitionTableOverAWholeDiskFileSystemIsAmbiguous) {
  // mkfs.ext4 on the whole disk, then a table written without wiping (sfdisk --wipe never): the ext4 superblock at
  // byte 1024 survives beside the MBR. Mapping by the table alone would drop the file system's blocks outside the
  // partition.
  sh("truncate -s 16M " + img_ + " && mkdir " + dir_ + "/t && head -c 6M /dev/urandom > " + dir_ +
     "/t/data && mkfs.ext4 -q -F -d " + dir_ + "/t " + img_ +
     " && printf 'label: dos\n,4M,83\n' | sfdisk -q --wipe never " + img_);
  auto disk = open();
  auto parts = read_partition_table(*disk);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  ASSERT_EQ(parts->size(), 1u);
  auto m = build_sparse_map(disk);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->unused.empty()) << sparse_summary(*m);
  EXPECT_EQ(m->outside_partitions_bytes, 0u);
  ASSERT_EQ(m->volumes.size(), 2u);
  EXPECT_EQ(m->volumes[0].partition, 0);
  EXPECT_EQ(m->volumes[0].type, "ext4");
  for (const auto& v : m->volumes) {
    EXPECT_FALSE(v.mapped);
    EXPECT_EQ(v.reason, "partition table and whole-disk file system: ambiguous");
  }
}

}  // namespace
}  // namespace vdkit::guestfs
