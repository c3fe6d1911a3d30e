// VHD driver: images built here byte by byte from the specification (dynamic with partial bitmaps, differencing,
// fixed), read back, then poked into hostile shapes; each must give a clear error naming the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "blockcore/base/bytes.h"
#include "blockcore/sources/image.h"
#include "blockcore/vhd/vhd_format.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kBlock = 4096;  // 8 sectors a block: one bitmap byte
constexpr uint64_t kSize = 8 * kBlock;

void seal(std::vector<uint8_t>& img, size_t at, size_t len, size_t sum_at) {
  store_be32(&img[at + sum_at], vhd::checksum(&img[at], len, sum_at));
}

std::vector<uint8_t> footer(uint32_t type, uint64_t size, uint64_t data_offset, uint8_t uuid_byte) {
  std::vector<uint8_t> f(512);
  std::memcpy(f.data(), "conectix", 8);
  store_be32(&f[8], 2);
  store_be32(&f[12], 0x00010000);
  store_be64(&f[16], data_offset);
  std::memcpy(&f[28], "win ", 4);
  store_be64(&f[40], size);
  store_be64(&f[48], size);
  store_be32(&f[60], type);
  std::memset(&f[68], uuid_byte, 16);
  seal(f, 0, 512, 64);
  return f;
}

// A dynamic (or, with parent_uuid_byte, differencing) disk of kSize bytes: block 1 holds sectors 0 and 2 (bytes
// 0x11 and 0x22), block 3 every sector (0x33); the rest is absent. Layout: footer copy, header at 512, BAT at 1536,
// locator data at 2048, blocks from 2560 (512-byte bitmap + 4096 data each), footer.
std::vector<uint8_t> dynamic_image(int parent_uuid_byte = -1, const std::string& w2ru = "") {
  std::vector<uint8_t> img(2560 + 2 * (512 + kBlock));
  uint32_t type = parent_uuid_byte >= 0 ? 4 : 3;
  auto f = footer(type, kSize, 512, parent_uuid_byte >= 0 ? 0xc1 : 0xd1);
  std::memcpy(img.data(), f.data(), 512);
  uint8_t* h = &img[512];
  std::memcpy(h, "cxsparse", 8);
  store_be64(h + 8, ~0ull);
  store_be64(h + 16, 1536);
  store_be32(h + 24, 0x00010000);
  store_be32(h + 28, kSize / kBlock);
  store_be32(h + 32, kBlock);
  if (parent_uuid_byte >= 0) {
    std::memset(h + 40, parent_uuid_byte, 16);
    std::memcpy(h + 576, "W2ru", 4);
    store_be32(h + 576 + 4, 1);
    store_be32(h + 576 + 8, static_cast<uint32_t>(w2ru.size() * 2));
    store_be64(h + 576 + 16, 2048);
    for (size_t i = 0; i < w2ru.size(); ++i) img[2048 + 2 * i] = static_cast<uint8_t>(w2ru[i]);
  }
  seal(img, 512, 1024, 36);
  for (uint32_t b = 0; b < kSize / kBlock; ++b) store_be32(&img[1536 + 4 * b], vhd::kBatUnused);
  store_be32(&img[1536 + 4 * 1], 2560 / 512);
  img[2560] = 0xa0;  // sectors 0 and 2
  std::memset(&img[2560 + 512], 0x11, 512);
  std::memset(&img[2560 + 512 + 1024], 0x22, 512);
  std::memset(&img[2560 + 512 + 512], 0x99, 512);  // bit clear: never read
  uint32_t b3 = 2560 + 512 + kBlock;
  store_be32(&img[1536 + 4 * 3], b3 / 512);
  img[b3] = 0xff;
  std::memset(&img[b3 + 512], 0x33, kBlock);
  img.insert(img.end(), f.begin(), f.end());
  return img;
}

class VhdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdkit-vhd-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string put(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                              static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  std::string error_of(const std::vector<uint8_t>& bytes) {
    auto dev = open_image(put("bad.vhd", bytes));
    EXPECT_FALSE(dev.ok());
    return dev.ok() ? "" : dev.status().message();
  }
  std::string dir_;
};

std::vector<uint8_t> read_all(BlockDevice& d) {
  std::vector<uint8_t> out(d.size());
  EXPECT_TRUE(d.read(0, out).ok());
  return out;
}

TEST_F(VhdTest, DynamicReadsBitmapSectorsAndZerosElsewhere) {
  auto dev = open_image(put("d.vhd", dynamic_image()));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_EQ((*dev)->info().format, "vhd");
  EXPECT_EQ((*dev)->info().subformat, "dynamic");
  auto data = read_all(**dev);
  std::vector<uint8_t> want(kSize);
  std::memset(&want[kBlock], 0x11, 512);
  std::memset(&want[kBlock + 1024], 0x22, 512);
  std::memset(&want[3 * kBlock], 0x33, kBlock);
  EXPECT_EQ(data, want);
  std::vector<Extent> ex;
  ASSERT_TRUE((*dev)->extents(0, kSize, ex).ok());
  std::vector<Extent> want_ex = {{0, kBlock, ExtentType::kHole},
                                 {kBlock, 512, ExtentType::kData},
                                 {kBlock + 512, 512, ExtentType::kHole},
                                 {kBlock + 1024, 512, ExtentType::kData},
                                 {kBlock + 1536, 2 * kBlock - 1536, ExtentType::kHole},
                                 {3 * kBlock, kBlock, ExtentType::kData},
                                 {4 * kBlock, 4 * kBlock, ExtentType::kHole}};
  EXPECT_EQ(ex, want_ex);
  // An odd range across the partial block.
  std::vector<uint8_t> part(1500);
  ASSERT_TRUE((*dev)->read(kBlock + 300, part).ok());
  EXPECT_TRUE(std::equal(part.begin(), part.end(), want.begin() + kBlock + 300));
}

TEST_F(VhdTest, DifferencingReadsClearSectorsFromTheParent) {
  put("parent.vhd", dynamic_image());
  auto dev = open_image(put("child.vhd", dynamic_image(0xd1, ".\\parent.vhd")));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  auto data = read_all(**dev);
  // The child's block 1 stores sectors 0 and 2 (the same bytes as the parent's); sector 1 comes from the parent,
  // which has it clear too: zeros. Block 3 is whole in both.
  auto parent = open_image(dir_ + "/parent.vhd");
  ASSERT_TRUE(parent.ok());
  EXPECT_EQ(data, read_all(**parent));
  EXPECT_EQ((*dev)->info().backing_filename, "./parent.vhd");
}

TEST_F(VhdTest, DifferencingChecksTheParentUuid) {
  put("parent.vhd", dynamic_image());
  std::string msg = error_of(dynamic_image(0x42, "parent.vhd"));
  EXPECT_NE(msg.find("Parent Unique Id 42424242"), std::string::npos) << msg;
}

TEST_F(VhdTest, DifferencingWithoutItsParentNamesWhatItTried) {
  std::string msg = error_of(dynamic_image(0xd1, "gone.vhd"));
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gone.vhd"), std::string::npos) << msg;
}

TEST_F(VhdTest, DifferencingRefusesAbsoluteParentsUnlessAllowed) {
  std::string msg = error_of(dynamic_image(0xd1, "C:\\etc\\parent.vhd"));
  EXPECT_NE(msg.find("allow-external-paths"), std::string::npos) << msg;
}

TEST_F(VhdTest, FixedDiskIsItsDataBeforeTheFooter) {
  std::vector<uint8_t> img(3 * 512, 0x5a);
  auto f = footer(2, 2 * 512, ~0ull, 0x01);
  std::memcpy(&img[1024], f.data(), 512);
  auto dev = open_image(put("f.vhd", img));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_EQ((*dev)->size(), 1024u);
  EXPECT_EQ(read_all(**dev), std::vector<uint8_t>(1024, 0x5a));
}

TEST_F(VhdTest, HostileFooterChecksum) {
  auto img = dynamic_image();
  img[img.size() - 512 + 48] ^= 1;
  img[48] ^= 1;
  std::string msg = error_of(img);
  EXPECT_NE(msg.find("Checksum (offset 64)"), std::string::npos) << msg;
}

TEST_F(VhdTest, DamagedEndFooterFallsBackToTheCopy) {
  auto img = dynamic_image();
  img[img.size() - 512] = 'X';
  auto dev = open_image(put("d.vhd", img));
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  bool noted = false;
  for (auto& [k, v] : (*dev)->info().specific) noted |= k == "footer" && v.find("copy at offset 0") == 0;
  EXPECT_TRUE(noted);
}

TEST_F(VhdTest, HostileDynamicHeader) {
  auto img = dynamic_image();
  img[512 + 100] ^= 1;  // checksum no longer matches
  EXPECT_NE(error_of(img).find("dynamic header at 0x200, field Checksum"), std::string::npos);

  img = dynamic_image();
  store_be32(&img[512 + 32], 3000);  // block size not a power of two
  seal(img, 512, 1024, 36);
  EXPECT_NE(error_of(img).find("Block Size"), std::string::npos);

  img = dynamic_image();
  store_be32(&img[512 + 28], 2);  // fewer BAT entries than blocks
  seal(img, 512, 1024, 36);
  EXPECT_NE(error_of(img).find("Max Table Entries"), std::string::npos);

  img = dynamic_image();
  store_be64(&img[512 + 16], 1ull << 40);  // BAT past the end
  seal(img, 512, 1024, 36);
  EXPECT_NE(error_of(img).find("the BAT"), std::string::npos);
}

TEST_F(VhdTest, HostileBatEntryPastTheEnd) {
  auto img = dynamic_image();
  store_be32(&img[1536 + 4 * 5], static_cast<uint32_t>(img.size() / 512));
  std::string msg = error_of(img);
  EXPECT_NE(msg.find("BAT entry 5"), std::string::npos) << msg;
}

TEST_F(VhdTest, HostileSizes) {
  auto img = dynamic_image();
  auto f = footer(3, vhd::kMaxVirtualBytes + 512, 512, 0xd1);
  std::memcpy(img.data(), f.data(), 512);
  std::memcpy(&img[img.size() - 512], f.data(), 512);
  EXPECT_NE(error_of(img).find("kMaxVirtualBytes"), std::string::npos);

  std::vector<uint8_t> fixed(1024);
  f = footer(2, 1 << 20, ~0ull, 1);
  std::memcpy(&fixed[512], f.data(), 512);
  EXPECT_NE(error_of(fixed).find("only 512 bytes before its footer"), std::string::npos);
}

TEST_F(VhdTest, HostileLocatorLength) {
  put("parent.vhd", dynamic_image());
  auto img = dynamic_image(0xd1, "parent.vhd");
  store_be32(&img[512 + 576 + 8], vhd::kMaxLocatorBytes + 1);
  seal(img, 512, 1024, 36);
  EXPECT_NE(error_of(img).find("kMaxLocatorBytes"), std::string::npos);
  store_be32(&img[512 + 576 + 8], 64);
  store_be64(&img[512 + 576 + 16], ~0ull - 8);
  seal(img, 512, 1024, 36);
  EXPECT_NE(error_of(img).find("past the end of the file"), std::string::npos);
}

TEST_F(VhdTest, TruncatedFiles) {
  auto img = dynamic_image();
  for (size_t n : {0, 100, 511, 600, 2000}) {
    std::vector<uint8_t> cut(img.begin(), img.begin() + static_cast<std::ptrdiff_t>(n));
    auto dev = open_image(put("cut.vhd", cut), OpenOptions{.format = "vhd"});
    EXPECT_FALSE(dev.ok()) << n;
  }
}

TEST(VhdLocator, PathsFromEachPlatform) {
  auto u16 = [](const std::string& s) {
    std::vector<uint8_t> v;
    for (char c : s) v.insert(v.end(), {static_cast<uint8_t>(c), 0});
    return v;
  };
  EXPECT_EQ(vhd::locator_path(vhd::kCodeW2ru, u16(".\\a\\b.vhd")), "./a/b.vhd");
  EXPECT_EQ(vhd::locator_path(vhd::kCodeW2ku, u16("D:\\vms\\b.vhd")), "/vms/b.vhd");
  std::string url = "file://localhost/srv/my%20disk.vhd";
  EXPECT_EQ(vhd::locator_path(vhd::kCodeMacX, {url.begin(), url.end()}), "/srv/my disk.vhd");
  EXPECT_EQ(vhd::locator_path(0x4d616320, {}), "");  // "Mac ": not followed
}

}  // namespace
}  // namespace vdkit
