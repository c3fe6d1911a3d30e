// Tests for PV labels, metadata areas and LV mapping on PVs written by test::make_pv_image (the integration test
// test_lvm.sh checks the same reader against volume groups lvm2 made).
#include "blockcore/lvm/lvm_volume.h"

#include <gtest/gtest.h>

#include <numeric>

#include "blockcore/base/bytes.h"
#include "blockcore/testing/lvm_image.h"
#include "blockcore/testing/memory_device.h"

namespace vdkit::lvm {
namespace {

constexpr uint64_t kExtent = 64 << 10;  // 128 sectors
constexpr uint64_t kPeStart = 1 << 20;
const std::string kUuidA = "AAAAAAaaaaBBBBbbbbCCCCccccDDDDdd";
const std::string kUuidB = "EEEEEEeeeeFFFFffffGGGGggggHHHHhh";

std::string dashed(const std::string& u) { return format_uuid(u); }

std::string pv_section(const std::string& name, const std::string& uuid, uint64_t pe_count) {
  return name + " {\nid = \"" + dashed(uuid) + "\"\ndevice = \"/dev/sda2\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\n" +
         "dev_size = 16384\npe_start = 2048\npe_count = " + std::to_string(pe_count) + "\n}\n";
}

std::string linear_segment(int n, uint64_t start, uint64_t count, const std::string& pv, uint64_t pv_extent) {
  return "segment" + std::to_string(n) + " {\nstart_extent = " + std::to_string(start) +
         "\nextent_count = " + std::to_string(count) + "\ntype = \"striped\"\nstripe_count = 1\nstripes = [\n\"" +
         pv + "\", " + std::to_string(pv_extent) + "\n]\n}\n";
}

std::string lv_section(const std::string& name, const std::string& segments, bool visible = true) {
  return name + " {\nid = \"lvlvlv-" + name + "\"\nstatus = [\"READ\", \"WRITE\"" + (visible ? ", \"VISIBLE\"" : "") +
         "]\nflags = []\nsegment_count = 1\n" + segments + "}\n";
}

// A PV whose extents are filled with a pattern naming the PV and the extent, so a wrong mapping shows.
std::shared_ptr<MemoryDevice> pv_device(const std::string& uuid, const std::string& text, uint64_t text_offset = 512,
                                        char tag = 'A') {
  test::PvImageSpec spec;
  spec.uuid = uuid;
  spec.size = kPeStart + 16 * kExtent;
  spec.text_offset = text_offset;
  auto bytes = test::make_pv_image(spec, text);
  for (uint64_t e = 0; e < 16; ++e)
    for (uint64_t i = 0; i < kExtent; i += 8) {
      uint8_t* p = bytes.data() + kPeStart + e * kExtent + i;
      p[0] = static_cast<uint8_t>(tag);
      store_le16(p + 1, static_cast<uint16_t>(e));
      store_le32(p + 3, static_cast<uint32_t>(i));
    }
  return std::make_shared<MemoryDevice>(std::move(bytes));
}

// What byte `off` of extent `e` on PV `tag` holds.
std::vector<uint8_t> expect_bytes(char tag, uint64_t e, uint64_t from, uint64_t len) {
  std::vector<uint8_t> out(len);
  for (uint64_t k = 0; k < len; ++k) {
    uint64_t i = from + k, row = i - i % 8;
    uint8_t p[8] = {static_cast<uint8_t>(tag)};
    store_le16(p + 1, static_cast<uint16_t>(e));
    store_le32(p + 3, static_cast<uint32_t>(row));
    p[7] = 0;
    out[k] = p[i % 8];
  }
  return out;
}

std::vector<uint8_t> read_all(BlockDevice& d, uint64_t off, uint64_t len) {
  std::vector<uint8_t> b(len);
  EXPECT_TRUE(d.read(off, b).ok());
  return b;
}

TEST(LvmCrc, MatchesLvm2sSeededCrcWithoutInversion) {
  // Empty input returns the seed; one zero byte is one table step.
  EXPECT_EQ(crc32(kInitialCrc, {}), kInitialCrc);
  const uint8_t z = 0;
  uint32_t c = kInitialCrc;
  for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
  EXPECT_EQ(crc32(kInitialCrc, {&z, 1}), c);
}

TEST(LvmLabel, ReadsLabelAndAreas) {
  auto dev = pv_device(kUuidA, "x = 1\n");
  auto l = read_pv_label(*dev);
  ASSERT_TRUE(l.ok()) << l.status().message();
  ASSERT_TRUE(l->has_value());
  EXPECT_EQ((*l)->label_sector, 1u);
  EXPECT_EQ((*l)->uuid, kUuidA);
  ASSERT_EQ((*l)->data_areas.size(), 1u);
  EXPECT_EQ((*l)->data_areas[0].offset, kPeStart);
  ASSERT_EQ((*l)->metadata_areas.size(), 1u);
  EXPECT_EQ((*l)->metadata_areas[0].offset, 4096u);
  EXPECT_EQ(format_uuid(kUuidA), "AAAAAA-aaaa-BBBB-bbbb-CCCC-cccc-DDDDdd");
}

TEST(LvmLabel, NoLabelIsNotAnError) {
  MemoryDevice dev(1 << 20);
  auto l = read_pv_label(dev);
  ASSERT_TRUE(l.ok());
  EXPECT_FALSE(l->has_value());
}

TEST(LvmLabel, BadCrcAndFieldsAreNamed) {
  auto dev = pv_device(kUuidA, "x = 1\n");
  dev->bytes()[512 + 40] ^= 1;  // inside the PV header: the label CRC no longer matches
  auto l = read_pv_label(*dev);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("sector 1: CRC"), std::string::npos) << l.status().message();

  auto dev2 = pv_device(kUuidA, "x = 1\n");
  store_le32(dev2->bytes().data() + 512 + 20, 500);  // offset_xl past the sector
  store_le32(dev2->bytes().data() + 512 + 16,
             crc32(kInitialCrc, {dev2->bytes().data() + 512 + 20, 492}));
  l = read_pv_label(*dev2);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("offset_xl"), std::string::npos) << l.status().message();
}

TEST(LvmMetadata, ReadsWrappedTextAndChecksItsCrc) {
  std::string text(3000, ' ');
  text = "a = 1\n" + text + "b = 2\n";
  // 64 KiB area: start the text 1000 bytes before its end so it wraps to just after the header.
  auto dev = pv_device(kUuidA, text, (64 << 10) - 1000);
  auto copy = read_metadata_area(*dev, {4096, 64 << 10});
  ASSERT_TRUE(copy.ok()) << copy.status().message();
  ASSERT_TRUE(copy->has_value());
  EXPECT_EQ((*copy)->text, text + '\0');
  dev->bytes()[4096 + 512 + 10] ^= 1;  // in the wrapped part
  copy = read_metadata_area(*dev, {4096, 64 << 10});
  ASSERT_FALSE(copy.ok());
  EXPECT_NE(copy.status().message().find("metadata text CRC"), std::string::npos);
}

TEST(LvmMetadata, HeaderChecks) {
  auto dev = pv_device(kUuidA, "a = 1\n");
  auto bad = read_metadata_area(*dev, {4096, 32 << 10});  // size differs from the header's
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("size"), std::string::npos);
  bad = read_metadata_area(*dev, {4096, uint64_t{1} << 40});  // past the PV
  ASSERT_FALSE(bad.ok());
  dev->bytes()[4096 + 5] = 'X';
  bad = read_metadata_area(*dev, {4096, 64 << 10});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("magic"), std::string::npos);
}

struct TwoPvs {
  std::shared_ptr<MemoryDevice> a, b;
  std::vector<PvCandidate> candidates() const {
    return {{"disk0", 0, 0, a}, {"disk1", 1, 0, b}};
  }
};

TwoPvs two_pvs(const std::string& lvs, int seq_a = 3, int seq_b = 3) {
  std::string pvs = pv_section("pv0", kUuidA, 16) + pv_section("pv1", kUuidB, 16);
  return {pv_device(kUuidA, test::vg_text("vg", seq_a, 128, pvs, lvs), 512, 'A'),
          pv_device(kUuidB, test::vg_text("vg", seq_b, 128, pvs, lvs), 512, 'B')};
}

TEST(LvmVolume, LinearOutOfOrderSegmentsAcrossTwoPvs) {
  // root: extents 0-1 on pv1 at 5, extents 2-4 on pv0 at 9 (text lists the later segment first).
  auto pvs = two_pvs(lv_section("root", linear_segment(2, 2, 3, "pv0", 9) + linear_segment(1, 0, 2, "pv1", 5)));
  auto scan_r = scan(pvs.candidates());
  ASSERT_TRUE(scan_r.ok()) << scan_r.status().message();
  ASSERT_EQ(scan_r->vgs.size(), 1u);
  EXPECT_TRUE(scan_r->warnings.empty());
  auto lv = open_logical_volume(scan_r->vgs[0], "root");
  ASSERT_TRUE(lv.ok()) << lv.status().message();
  EXPECT_EQ((*lv)->size(), 5 * kExtent);
  EXPECT_EQ(read_all(**lv, 0, 100), expect_bytes('B', 5, 0, 100));
  // A read across the segment boundary and into the next PV.
  auto across = read_all(**lv, 2 * kExtent - 10, 30);
  auto want = expect_bytes('B', 6, kExtent - 10, 10);
  auto w2 = expect_bytes('A', 9, 0, 20);
  want.insert(want.end(), w2.begin(), w2.end());
  EXPECT_EQ(across, want);
  // Writes land on the PV bytes the mapping names.
  std::vector<uint8_t> data(20, 0x5a);
  ASSERT_TRUE((*lv)->write(2 * kExtent - 10, data).ok());
  EXPECT_EQ(pvs.b->bytes()[kPeStart + 7 * kExtent - 10], 0x5a);
  EXPECT_EQ(pvs.a->bytes()[kPeStart + 9 * kExtent + 9], 0x5a);
  EXPECT_EQ(pvs.a->bytes()[kPeStart + 9 * kExtent + 16], 'A');  // the next row, untouched
  std::vector<Extent> ex;
  ASSERT_TRUE((*lv)->extents(0, (*lv)->size(), ex).ok());
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].length, 5 * kExtent);
}

TEST(LvmVolume, StripedOverThreeRowsAndTwoPvs) {
  // 4 extents in 2 stripes of 16 KiB chunks: stripe 0 on pv0 from extent 1, stripe 1 on pv1 from extent 3.
  std::string seg =
      "segment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 32\n"
      "stripes = [\n\"pv0\", 1,\n\"pv1\", 3\n]\n}\n";
  auto pvs = two_pvs(lv_section("data", seg));
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  auto lv = open_logical_volume(s->vgs[0], "data");
  ASSERT_TRUE(lv.ok()) << lv.status().message();
  EXPECT_EQ(s->vgs[0].vg.find_lv("data")->type(), "striped");
  const uint64_t chunk = 16 << 10;
  // chunk c of the LV: stripe c % 2, row c / 2.
  for (uint64_t c : {0u, 1u, 2u, 3u, 9u, 15u}) {
    char tag = c % 2 ? 'B' : 'A';
    uint64_t pv_off = (c / 2) * chunk;  // inside the stripe's area
    uint64_t first_extent = c % 2 ? 3 : 1;
    auto got = read_all(**lv, c * chunk + 100, 50);
    EXPECT_EQ(got, expect_bytes(tag, first_extent + pv_off / kExtent, pv_off % kExtent + 100, 50)) << c;
  }
}

TEST(LvmVolume, HighestSeqnoWinsAndBadCopiesAreWarnings) {
  auto pvs = two_pvs(lv_section("old", linear_segment(1, 0, 1, "pv0", 0)), 4, 4);
  // pv1 carries a newer copy with a second LV.
  std::string pvtext = pv_section("pv0", kUuidA, 16) + pv_section("pv1", kUuidB, 16);
  std::string lvs = lv_section("old", linear_segment(1, 0, 1, "pv0", 0)) +
                    lv_section("new", linear_segment(1, 0, 2, "pv1", 0));
  test::PvImageSpec spec;
  spec.uuid = kUuidB;
  spec.size = kPeStart + 16 * kExtent;
  pvs.b = std::make_shared<MemoryDevice>(test::make_pv_image(spec, test::vg_text("vg", 5, 128, pvtext, lvs)));
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->vgs.size(), 1u);
  EXPECT_EQ(s->vgs[0].vg.seqno, 5);
  EXPECT_EQ(s->vgs[0].metadata_from, "disk1");
  EXPECT_NE(s->vgs[0].vg.find_lv("new"), nullptr);
  // A corrupt newer copy is skipped with a warning; the older one still serves.
  pvs.b->bytes()[4096 + 600] ^= 0x20;
  s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vgs[0].vg.seqno, 4);
  ASSERT_EQ(s->warnings.size(), 1u);
  EXPECT_NE(s->warnings[0].find("disk1"), std::string::npos);
}

TEST(LvmVolume, MissingPvRefusesOnlyItsLvs) {
  auto pvs = two_pvs(lv_section("a", linear_segment(1, 0, 1, "pv0", 0)) +
                     lv_section("b", linear_segment(1, 0, 1, "pv1", 0)));
  auto s = scan({{"disk0", 0, 0, pvs.a}});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->vgs.size(), 1u);
  EXPECT_TRUE(open_logical_volume(s->vgs[0], "a").ok());
  auto b = open_logical_volume(s->vgs[0], "b");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("PV " + dashed(kUuidB) + " of VG vg is not among the given disks"),
            std::string::npos)
      << b.status().message();
  auto none = open_logical_volume(s->vgs[0], "zz");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("has no LV zz (it has a, b)"), std::string::npos);
}

TEST(LvmVolume, UnmappedTypesAndBadSegmentsAreRefusedPerLv) {
  std::string thin = "segment1 {\nstart_extent = 0\nextent_count = 2\ntype = \"thin-pool\"\nmetadata = \"p_tmeta\"\n"
                     "pool = \"p_tdata\"\ntransaction_id = 0\n}\n";
  std::string raid = "segment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"raid1\"\ndevice_count = 2\n"
                     "raids = [\"r_rmeta_0\", \"r_rimage_0\"]\n}\n";
  auto pvs = two_pvs(lv_section("pool", thin) + lv_section("r", raid) +
                     lv_section("past", linear_segment(1, 0, 4, "pv0", 14)) +
                     lv_section("gap", linear_segment(1, 0, 1, "pv0", 0) + linear_segment(2, 2, 1, "pv0", 1)) +
                     lv_section("ok", linear_segment(1, 0, 1, "pv1", 15)));
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok()) << s.status().message();
  const FoundVg& vg = s->vgs[0];
  struct Case {
    const char* lv;
    const char* says;
  } cases[] = {{"pool", "LV vg/pool has type thin-pool"},
               {"r", "LV vg/r has type raid1"},
               {"past", "lie past the 16 extents of pv0"},
               {"gap", "leaves a gap after extent 1"}};
  for (const auto& c : cases) {
    auto lv = open_logical_volume(vg, c.lv);
    ASSERT_FALSE(lv.ok()) << c.lv;
    EXPECT_NE(lv.status().message().find(c.says), std::string::npos) << lv.status().message();
  }
  EXPECT_EQ(vg.vg.find_lv("pool")->type(), "thin-pool");
  EXPECT_TRUE(open_logical_volume(vg, "ok").ok());
}

TEST(LvmVolume, StructuralErrorsFailTheCopy) {
  const char* bad_lvs[] = {
      "x {\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"striped\"\nstripe_count = 1\n"
      "stripes = [\"pv9\", 0]\n}\n}\n",
      "x {\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 8\n"
      "stripes = [\"pv0\", 0]\n}\n}\n",
      "x {\nsegment1 {\nstart_extent = 9223372036854775807\nextent_count = 9223372036854775807\n"
      "type = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 0]\n}\n}\n",
  };
  for (const char* lvs : bad_lvs) {
    auto pvs = two_pvs(lvs);
    auto s = scan(pvs.candidates());
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->vgs.empty() || !open_logical_volume(s->vgs[0], "x").ok()) << lvs;
    EXPECT_FALSE(s->warnings.empty()) << lvs;
  }
}

TEST(LvmVolume, UnusedExtents) {
  auto pvs = two_pvs(lv_section("a", linear_segment(1, 0, 2, "pv0", 3) + linear_segment(2, 2, 1, "pv0", 10)));
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  auto free0 = unused_extents(s->vgs[0].vg, 0);
  ASSERT_EQ(free0.size(), 3u);
  EXPECT_EQ(free0[0].offset, kPeStart);
  EXPECT_EQ(free0[0].length, 3 * kExtent);
  EXPECT_EQ(free0[1].offset, kPeStart + 5 * kExtent);
  EXPECT_EQ(free0[1].length, 5 * kExtent);
  EXPECT_EQ(free0[2].offset, kPeStart + 11 * kExtent);
  EXPECT_EQ(free0[2].length, 5 * kExtent);
  auto free1 = unused_extents(s->vgs[0].vg, 1);
  ASSERT_EQ(free1.size(), 1u);
  EXPECT_EQ(free1[0].length, 16 * kExtent);
}

TEST(LvmVolume, LvRangesOnPvMatchTheDeviceMapping) {
  // Striped over both PVs in 16 KiB chunks, then a linear segment on pv0: every LV byte of a range, read through the
  // LV device, names (by the pattern) the PV byte lv_ranges_on_pv must put it at.
  std::string seg1 =
      "segment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"striped\"\nstripe_count = 2\nstripe_size = 32\n"
      "stripes = [\n\"pv0\", 1,\n\"pv1\", 3\n]\n}\n";
  auto pvs = two_pvs(lv_section("mix", seg1 + linear_segment(2, 4, 2, "pv0", 10)));
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  const VolumeGroup& vg = s->vgs[0].vg;
  const LogicalVolume& lv = *vg.find_lv("mix");
  ASSERT_TRUE(lv.refusal.empty()) << lv.refusal;
  auto dev = open_logical_volume(s->vgs[0], "mix");
  ASSERT_TRUE(dev.ok());
  const uint64_t chunk = 16 << 10;
  const ByteRanges lv_ranges = {{8, 3 * chunk + 8},
                                {5 * chunk - 64, 2 * chunk + 128},
                                {4 * kExtent - 80, kExtent + 160},
                                {6 * kExtent - 800, 800}};
  auto all = read_all(**dev, 0, (*dev)->size());
  ByteRanges want[2];
  for (auto [o, l] : lv_ranges)
    for (uint64_t x = o; x < o + l; x += 8) {
      const uint8_t* p = all.data() + x;
      const uint64_t pv_byte = kPeStart + load_le16(p + 1) * kExtent + load_le32(p + 3);
      want[p[0] == 'B'].emplace_back(pv_byte, 8);
    }
  for (size_t pv = 0; pv < 2; ++pv) {
    auto got = normalize_ranges(lv_ranges_on_pv(vg, lv, pv, lv_ranges), ~uint64_t{0});
    EXPECT_EQ(got, normalize_ranges(want[pv], ~uint64_t{0})) << "pv" << pv;
  }
}

TEST(LvmVolume, LvsOtherLvsReadAreMarked) {
  // An old-style snapshot: the hidden snapshot LV names its origin and its COW store.
  std::string snap = "snapshot0 {\nid = \"s\"\nstatus = [\"READ\"]\nsegment_count = 1\nsegment1 {\nstart_extent = 0\n"
                     "extent_count = 2\ntype = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\ncow_store = \"cow\"\n}\n}\n";
  auto pvs = two_pvs(lv_section("root", linear_segment(1, 0, 2, "pv0", 0)) +
                     lv_section("cow", linear_segment(1, 0, 1, "pv0", 2)) +
                     lv_section("other", linear_segment(1, 0, 1, "pv0", 3)) + snap);
  auto s = scan(pvs.candidates());
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->vgs.size(), 1u);
  const VolumeGroup& vg = s->vgs[0].vg;
  EXPECT_TRUE(vg.find_lv("root")->read_by_other_lv);
  EXPECT_TRUE(vg.find_lv("cow")->read_by_other_lv);
  EXPECT_FALSE(vg.find_lv("other")->read_by_other_lv);
  EXPECT_FALSE(vg.find_lv("snapshot0")->read_by_other_lv);
}

}  // namespace
}  // namespace vdkit::lvm
