// The prober against blkid: images made by mkfs/mkswap, and headers written here for what this machine cannot make.
#include "guestfs/probe.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "blockcore/base/bytes.h"
#include "blockcore/testing/memory_device.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit::guestfs {
namespace {

const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

bool have(const std::string& tool) { return test::run(kPath + "command -v " + tool) == 0; }

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("blkid")) GTEST_SKIP() << "blkid (util-linux) is not installed: nothing to compare with";
    char tmpl[] = "/tmp/vdkit-probetest.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) (void)test::run("rm -rf " + dir_);
  }

  // blkid's low-level probe of a file: KEY=VALUE pairs.
  std::map<std::string, std::string> blkid(const std::string& img) {
    std::string out;
    test::run(kPath + "blkid -p -o export " + img, &out);
    std::map<std::string, std::string> kv;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return kv;
  }

  // Probes the first kProbeBytes of the file through a BlockDevice.
  FsProbe probe_file(const std::string& img) {
    std::ifstream f(img, std::ios::binary);
    std::vector<uint8_t> head(kProbeBytes);
    f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(f.gcount()));
    MemoryDevice dev(std::move(head), false);
    auto p = probe_fs(dev);
    EXPECT_TRUE(p.ok()) << p.status().message();
    return p.ok() ? *p : FsProbe();
  }

  // TYPE, UUID and LABEL (vfat: the boot sector's, LABEL_FATBOOT) agree with blkid.
  void expect_as_blkid(const std::string& img, const std::string& what) {
    auto kv = blkid(img);
    ASSERT_FALSE(kv["TYPE"].empty()) << what << ": blkid found nothing, the test image is wrong";
    FsProbe p = probe_file(img);
    EXPECT_EQ(p.type, kv["TYPE"]) << what;
    EXPECT_EQ(p.uuid, kv["UUID"]) << what;
    EXPECT_EQ(p.label, kv["TYPE"] == "vfat" ? kv["LABEL_FATBOOT"] : kv["LABEL"]) << what;
  }

  std::string mkfs(const std::string& name, const std::string& cmd, const std::string& size = "8M") {
    std::string img = dir_ + "/" + name + ".img";
    std::string out;
    EXPECT_EQ(test::run("truncate -s " + size + " " + img + " && " + kPath + cmd + " " + img, &out), 0) << out;
    return img;
  }

  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::string img = dir_ + "/" + name + ".img";
    std::ofstream(img, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return img;
  }

  std::string dir_;
};

TEST_F(ProbeTest, ExtVariantsAreNamedAsBlkidNamesThem) {
  if (!have("mkfs.ext4")) GTEST_SKIP() << "mkfs.ext4 (e2fsprogs) is not installed";
  expect_as_blkid(mkfs("ext2", "mkfs.ext2 -q -F -L e2label -U 11111111-2222-3333-4444-555555555555"), "ext2");
  expect_as_blkid(mkfs("ext3", "mkfs.ext3 -q -F -L e3label"), "ext3");
  expect_as_blkid(mkfs("ext4", "mkfs.ext4 -q -F -L root"), "ext4");
  expect_as_blkid(mkfs("ext3-nojournal", "mkfs.ext3 -q -F -O ^has_journal"), "ext3 without a journal is ext2");
  expect_as_blkid(mkfs("ext4-nojournal", "mkfs.ext4 -q -F -O ^has_journal"), "ext4 without a journal");
  // No extents, 64bit or flex_bg, yet still ext4 to blkid: metadata_csum, huge_file and friends are beyond ext3.
  expect_as_blkid(mkfs("ext4-old", "mkfs.ext4 -q -F -O ^64bit,^extent,^flex_bg"), "ext4 without extents");
  expect_as_blkid(mkfs("ext2-journal", "mkfs.ext2 -q -F -O has_journal"), "ext2 with a journal is ext3");
  expect_as_blkid(mkfs("ext4dev", "mkfs.ext4 -q -F -E test_fs"), "the test_fs flag");
  expect_as_blkid(mkfs("jbd", "mkfs.ext4 -q -F -O journal_dev -b 4096"), "an external journal");
  EXPECT_TRUE(is_ext(probe_file(dir_ + "/ext4dev.img").type));
  EXPECT_FALSE(is_ext(probe_file(dir_ + "/jbd.img").type));
}

TEST_F(ProbeTest, XfsAndSwapAsBlkid) {
  if (have("mkfs.xfs"))
    expect_as_blkid(mkfs("xfs", "mkfs.xfs -q -f -L xfslabel", "320M"), "xfs");
  else
    std::cerr << "mkfs.xfs is not installed: XFS checked only by its synthetic header below\n";
  if (!have("mkswap")) GTEST_SKIP() << "mkswap (util-linux) is not installed";
  expect_as_blkid(mkfs("swap", "mkswap -L swaplabel -U 0a0b0c0d-1111-2222-3333-444455556666 2>/dev/null"), "swap");
}

// CRC-32C, which Btrfs puts in its superblock (blkid checks it).
uint32_t crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (crc & 1 ? 0x82F63B78u : 0);
  }
  return ~crc;
}

const uint8_t kUuid[16] = {0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef,
                           0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
const std::string kUuidText = "0123abcd-4567-89ef-0123-456789abcdef";

void put(std::vector<uint8_t>& b, size_t off, std::string_view s) { std::copy(s.begin(), s.end(), b.begin() + off); }

TEST_F(ProbeTest, BtrfsAsBlkid) {
  std::vector<uint8_t> b(1 << 20);
  uint8_t* sb = &b[0x10000];
  std::copy(kUuid, kUuid + 16, sb + 0x20);
  store_le64(sb + 0x30, 0x10000);  // this copy's own offset
  put(b, 0x10040, "_BHRfS_M");
  store_le32(sb + 0x90, 4096);   // sector size
  store_le32(sb + 0x94, 16384);  // node size
  store_le32(sb + 0x9c, 4096);   // stripe size
  put(b, 0x10000 + 0x12b, "btrlabel");
  store_le32(sb, crc32c(sb + 0x20, 4096 - 0x20));
  expect_as_blkid(write("btrfs", b), "btrfs");
}

TEST_F(ProbeTest, LuksAsBlkid) {
  for (int version : {1, 2}) {
    std::vector<uint8_t> b(1 << 20);
    put(b, 0, "LUKS\xba\xbe");
    store_be16(&b[6], static_cast<uint16_t>(version));
    put(b, 168, kUuidText);
    if (version == 2) {
      store_be64(&b[8], 16384);  // header size
      store_be64(&b[16], 1);     // sequence id
      put(b, 24, "lukslabel");
      put(b, 72, "sha256");
    }
    expect_as_blkid(write("luks" + std::to_string(version), b), "LUKS" + std::to_string(version));
  }
}

TEST_F(ProbeTest, Lvm2PhysicalVolumeAsBlkid) {
  std::vector<uint8_t> b(2 << 20);  // blkid ignores smaller devices for LVM
  const size_t label = 512;         // sector 1, where pvcreate puts it
  put(b, label, "LABELONE");
  store_le64(&b[label + 8], 1);
  store_le32(&b[label + 20], 32);
  put(b, label + 24, "LVM2 001");
  put(b, label + 32, "AbCdEf0123456789GhIjKlMnOpQrStUv");
  store_le64(&b[label + 64], b.size());
  // LVM's label CRC: CRC-32 without the final inversion, seeded 0xf597a6cf (zlib's crc32 inverts on both ends).
  uint32_t crc = ~static_cast<uint32_t>(crc32(~0xf597a6cfu & 0xffffffffu, &b[label + 20], 512 - 20));
  store_le32(&b[label + 16], crc);
  std::string img = write("lvm", b);
  expect_as_blkid(img, "LVM2 PV");
  EXPECT_EQ(probe_file(img).uuid, "AbCdEf-0123-4567-89Gh-IjKl-MnOp-QrStUv");
}

TEST_F(ProbeTest, VfatAsBlkid) {
  // FAT16: 2048 sectors, 4 per cluster, 2 FATs of 2 sectors, 512 root entries.
  std::vector<uint8_t> f16(1 << 20);
  put(f16, 0, "\xeb\x3c\x90mkfs.fat");
  store_le16(&f16[11], 512);
  f16[13] = 4;
  store_le16(&f16[14], 1);
  f16[16] = 2;
  store_le16(&f16[17], 512);
  store_le16(&f16[19], 2048);
  f16[21] = 0xf8;
  store_le16(&f16[22], 2);
  f16[38] = 0x29;
  store_le32(&f16[39], 0xA1B2C3D4);
  put(f16, 43, "FATLAB16   FAT16   ");
  put(f16, 510, "\x55\xaa");
  for (size_t fat : {512u, 1536u}) put(f16, fat, "\xf8\xff\xff\xff");
  expect_as_blkid(write("fat16", f16), "FAT16");

  // FAT32: 70000 one-sector clusters, FATs of 600 sectors, FSInfo in sector 1.
  const uint32_t sectors = 70000;
  std::vector<uint8_t> f32(size_t{sectors} * 512);
  put(f32, 0, "\xeb\x58\x90mkfs.fat");
  store_le16(&f32[11], 512);
  f32[13] = 1;
  store_le16(&f32[14], 32);
  f32[16] = 2;
  f32[21] = 0xf8;
  store_le32(&f32[32], sectors);
  store_le32(&f32[36], 600);
  store_le32(&f32[44], 2);
  store_le16(&f32[48], 1);
  store_le16(&f32[50], 6);
  f32[66] = 0x29;
  store_le32(&f32[67], 0x0BADF00D);
  put(f32, 71, "FATLAB32   FAT32   ");
  put(f32, 510, "\x55\xaa");
  put(f32, 512, "RRaA");
  put(f32, 512 + 484, "rrAa");
  put(f32, 512 + 510, "\x55\xaa");
  for (size_t fat : {32u, 632u}) {
    store_le32(&f32[fat * 512], 0x0ffffff8);
    store_le32(&f32[fat * 512 + 4], 0x0fffffff);
    store_le32(&f32[fat * 512 + 8], 0x0fffffff);
  }
  expect_as_blkid(write("fat32", f32), "FAT32");
}

// blkid wants an MFT before it names NTFS, more than a prober of boot sectors reads; the serial is its UUID.
TEST(Probe, NtfsBootSector) {
  std::vector<uint8_t> b(4096);
  put(b, 3, "NTFS    ");
  store_le64(&b[0x48], 0x1122334455667788);
  FsProbe p = probe_fs_bytes(b);
  EXPECT_EQ(p.type, kFsNtfs);
  EXPECT_EQ(p.uuid, "1122334455667788");
  EXPECT_EQ(p.label, "");
}

TEST(Probe, XfsHeader) {
  std::vector<uint8_t> b(4096);
  put(b, 0, "XFSB");
  std::copy(kUuid, kUuid + 16, &b[32]);
  put(b, 108, "xfslabel");
  FsProbe p = probe_fs_bytes(b);
  EXPECT_EQ(p.type, kFsXfs);
  EXPECT_EQ(p.uuid, kUuidText);
  EXPECT_EQ(p.label, "xfslabel");
}

TEST(Probe, NothingKnownIsNoType) {
  EXPECT_EQ(probe_fs_bytes(std::vector<uint8_t>(kProbeBytes)).type, "");
  EXPECT_EQ(probe_fs_bytes(std::vector<uint8_t>(100)).type, "");  // smaller than any superblock
  MemoryDevice empty(std::vector<uint8_t>{}, false);
  auto p = probe_fs(empty);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, "");
}

TEST(Probe, ReadsTheRangeItIsGivenAndNamesItsOffsetOnError) {
  std::vector<uint8_t> disk(4 << 20);
  put(disk, (1 << 20) + 0, "XFSB");
  MemoryDevice dev(disk, false);
  auto p = probe_fs(dev, 1 << 20, 1 << 20);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->type, kFsXfs);
  EXPECT_EQ(probe_fs(dev)->type, "");
  dev.fail_reads = true;
  auto bad = probe_fs(dev, 1 << 20, 1 << 20);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("offset 1048576"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace vdkit::guestfs
