// Tests for the VMDK text descriptor parser and the sparse header / marker parsers in vmdk_format.h.
#include <gtest/gtest.h>

#include <cstring>

#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit::vmdk {
namespace {

TEST(VmdkDescriptor, ParsesWhatQemuImgWrites) {
  auto d = parse_descriptor(
      "# Disk DescriptorFile\nversion=1\nCID=b9ab6306\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n\n"
      "# Extent description\nRW 8192 FLAT \"zf-flat.vmdk\" 0\n\n# The Disk Data Base\n#DDB\n\n"
      "ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n",
      "t");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->create_type, "monolithicFlat");
  EXPECT_EQ(d->cid, 0xb9ab6306u);
  EXPECT_FALSE(d->has_parent());
  ASSERT_EQ(d->extents.size(), 1u);
  EXPECT_EQ(d->extents[0].kind, ExtentKind::kFlat);
  EXPECT_EQ(d->extents[0].sectors, 8192u);
  EXPECT_EQ(d->extents[0].filename, "zf-flat.vmdk");
  EXPECT_EQ(d->get("DDB.ADAPTERTYPE"), "ide");
  EXPECT_EQ(d->get("ddb.virtualHWVersion"), "4");
}

TEST(VmdkDescriptor, ToleratesCrlfSpacingCaseQuotesAndComments) {
  auto d = parse_descriptor(
      "# Disk DescriptorFile\r\n  # indented comment\r\nVersion = 1\r\ncid =  0BADCAFE\r\nParentCID= 12345678\r\n"
      "createtype\t=\t\"vmfsThin\"\r\nparentFileNameHint = \"my parent.vmdk\"\r\n\r\n"
      "rw 100 vmfs \"my disk-flat.vmdk\"\r\nRDONLY 50 zero\r\nRW\t7\tFlat\t\"x y\"\t3\r\n",
      "t");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->create_type, "vmfsThin");
  EXPECT_EQ(d->cid, 0x0badcafeu);
  EXPECT_EQ(d->parent_cid, 0x12345678u);
  EXPECT_EQ(d->parent_file_name_hint, "my parent.vmdk");
  EXPECT_TRUE(d->has_parent());
  ASSERT_EQ(d->extents.size(), 3u);
  EXPECT_EQ(d->extents[0].kind, ExtentKind::kVmfs);
  EXPECT_EQ(d->extents[0].filename, "my disk-flat.vmdk");
  EXPECT_EQ(d->extents[1].kind, ExtentKind::kZero);
  EXPECT_EQ(d->extents[1].access, ExtentAccess::kReadOnly);
  EXPECT_EQ(d->extents[2].offset, 3u);
  EXPECT_EQ(d->extents[2].filename, "x y");
  EXPECT_EQ(d->total_sectors(), 157u);
}

TEST(VmdkDescriptor, StopsAtTheFirstNulAsInAnEmbeddedArea) {
  std::string text = "createType=\"monolithicSparse\"\nRW 10 SPARSE \"a.vmdk\"\n";
  text += std::string(1, '\0') + "RW 10 SPARSE \"b.vmdk\"\n";
  auto d = parse_descriptor(text, "t");
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->extents.size(), 1u);
}

TEST(VmdkDescriptor, RefusesBadLinesNamingTheLine) {
  struct Case {
    const char* text;
    const char* needle;
  } cases[] = {
      {"createType=\"x\"\nRW ten FLAT \"a\" 0\n", "line 2: extent size"},
      {"createType=\"x\"\nRW 0 FLAT \"a\" 0\n", "line 2: extent size is 0"},
      {"createType=\"x\"\nRW 10 BOGUS \"a\" 0\n", "unknown extent type 'BOGUS'"},
      {"createType=\"x\"\nRW 10 FLAT \"a 0\n", "no closing quote"},
      {"createType=\"x\"\nRW 10 FLAT \"a\" zero\n", "extent offset"},
      {"createType=\"x\"\nRW 10 FLAT\n", "names no file"},
      {"createType=\"x\"\nRW 10 ZERO \"a\"\n", "a ZERO extent names no file"},
      {"createType=\"x\"\nthis line means nothing\nRW 10 ZERO\n", "line 2: is neither"},
      {"createType=\"x\"\nCID=xyz\nRW 10 ZERO\n", "CID 'xyz'"},
      {"createType=\"x\"\nCID=123456789\nRW 10 ZERO\n", "32-bit"},
      {"createType=\"x\"\n", "names no extents"},
      {"RW 10 ZERO\n", "no createType"},
      {"", "descriptor is empty"},
      {"createType=\"x\"\nRW 18446744073709551615 ZERO\n", "kMaxCapacityBytes"},
      {"createType=\"x\"\nRW 18446744073709551616 ZERO\n", "extent size"},
      {"createType=\"x\"\nRW 1125899906842624 ZERO\nRW 1125899906842624 ZERO\n", "kMaxCapacityBytes"},
  };
  for (const auto& c : cases) {
    auto d = parse_descriptor(c.text, "t");
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.status().code(), EINVAL);
    EXPECT_NE(d.status().message().find(c.needle), std::string::npos) << d.status().message();
  }
}

TEST(VmdkDescriptor, BoundsTheNumberOfExtentsAndTheSize) {
  std::string text = "createType=\"x\"\n";
  for (size_t i = 0; i <= kMaxExtents; ++i) text += "RW 1 ZERO\n";
  auto d = parse_descriptor(text, "t");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("kMaxExtents"), std::string::npos) << d.status().message();
  std::string big(kMaxDescriptorBytes + 1, '#');
  d = parse_descriptor(big, "t");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("kMaxDescriptorBytes"), std::string::npos);
}

std::vector<uint8_t> header_bytes() {
  std::vector<uint8_t> b(512, 0);
  auto put32 = [&](size_t off, uint32_t v) { std::memcpy(b.data() + off, &v, 4); };
  auto put64 = [&](size_t off, uint64_t v) { std::memcpy(b.data() + off, &v, 8); };
  put32(0, kSparseMagic);
  put32(4, 1);
  put32(8, kFlagValidNewlineTest);
  put64(12, 4096);  // capacity
  put64(20, 128);   // grain
  put32(44, 512);
  put64(56, 21);
  b[73] = '\n';
  b[74] = ' ';
  b[75] = '\r';
  b[76] = '\n';
  return b;
}

TEST(VmdkSparseHeader, ParsesAndValidates) {
  auto b = header_bytes();
  auto h = parse_sparse_header(b, "t");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_TRUE(validate_sparse_header(*h, "t").ok());
  EXPECT_EQ(h->grain_bytes(), 65536u);
  EXPECT_EQ(h->gd_entries(), 1u);
  b[0] = 'X';
  EXPECT_NE(parse_sparse_header(b, "t").status().message().find("magic"), std::string::npos);
  EXPECT_FALSE(parse_sparse_header(std::span<const uint8_t>(b.data(), 40), "t").ok());
}

TEST(VmdkSparseHeader, CompressionMustBeDeflate) {
  auto b = header_bytes();
  uint32_t flags = kFlagCompressedGrains | kFlagMarkers;
  std::memcpy(b.data() + 8, &flags, 4);
  b[77] = 2;
  auto h = parse_sparse_header(b, "t");
  ASSERT_TRUE(h.ok());
  auto st = validate_sparse_header(*h, "t");
  EXPECT_EQ(st.code(), ENOTSUP);
  EXPECT_NE(st.message().find("compressAlgorithm"), std::string::npos);
}

TEST(VmdkMarkers, GrainAndMetadataMarkers) {
  uint8_t b[512] = {};
  uint64_t lba = 256;
  uint32_t size = 1000;
  std::memcpy(b, &lba, 8);
  std::memcpy(b + 8, &size, 4);
  auto m = parse_marker(b, "t", 0);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->is_grain());
  EXPECT_EQ(m->value, 256u);
  size = 0;
  uint32_t type = static_cast<uint32_t>(MarkerType::kGrainTable);
  std::memcpy(b + 8, &size, 4);
  std::memcpy(b + 12, &type, 4);
  m = parse_marker(b, "t", 0);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->is_grain());
  EXPECT_EQ(m->type, type);
  EXPECT_FALSE(parse_marker(std::span<const uint8_t>(b, 14), "t", 0).ok());
}

TEST(VmdkMarkers, FooterMustBeComplete) {
  std::vector<uint8_t> tail(kStreamTailBytes, 0);
  auto st = parse_stream_footer(tail, 1 << 20, "t");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("footer marker"), std::string::npos) << st.status().message();
  uint64_t one = 1;
  uint32_t footer = 3;
  std::memcpy(tail.data(), &one, 8);
  std::memcpy(tail.data() + 12, &footer, 4);
  auto h = header_bytes();
  std::memcpy(tail.data() + 512, h.data(), 512);
  auto ok = parse_stream_footer(tail, 1 << 20, "t");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->gd_offset, 21u);
  tail[1024 + 12] = 9;  // end-of-stream marker damaged
  EXPECT_NE(parse_stream_footer(tail, 1 << 20, "t").status().message().find("end-of-stream"), std::string::npos);
  EXPECT_NE(parse_stream_footer(tail, 1000, "t").status().message().find("too short"), std::string::npos);
}

}  // namespace
}  // namespace vdkit::vmdk
