// Tests for the LVM free-space map: the extents no LV uses, relative to the PV device, clipped to it.
#include "guestfs/lvm_free_space.h"

#include <gtest/gtest.h>

#include <cstring>

#include "blockcore/lvm/lvm_volume.h"
#include "blockcore/testing/lvm_image.h"
#include "blockcore/testing/memory_device.h"
#include "guestfs/sparse_map.h"

namespace vdkit::guestfs {
namespace {

constexpr uint64_t kExtent = 64 << 10;
constexpr uint64_t kPeStart = 1 << 20;

lvm::VolumeGroup vg_with(const std::string& lvs) {
  std::string pv = "pv0 {\nid = \"AAAAAA-aaaa-BBBB-bbbb-CCCC-cccc-DDDDdd\"\ndev_size = 4096\npe_start = 2048\n"
                   "pe_count = 16\n}\n";
  test::PvImageSpec spec;
  spec.uuid = "AAAAAAaaaaBBBBbbbbCCCCccccDDDDdd";
  spec.size = kPeStart + 16 * kExtent;
  auto dev = std::make_shared<MemoryDevice>(test::make_pv_image(spec, test::vg_text("vg", 1, 128, pv, lvs)));
  auto s = lvm::scan({{"pv", 0, 0, dev}});
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s->vgs.size(), 1u);
  return s->vgs.at(0).vg;
}

std::string linear(const std::string& name, uint64_t start, uint64_t count) {
  return name + " {\nid = \"x\"\nstatus = [\"VISIBLE\"]\nsegment1 {\nstart_extent = 0\nextent_count = " +
         std::to_string(count) + "\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"pv0\", " +
         std::to_string(start) + "]\n}\n}\n";
}

TEST(LvmFreeSpace, ExtentsNoLvUsesClippedToTheDevice) {
  auto vg = vg_with(linear("a", 2, 3) + linear("b", 8, 2));
  std::vector<std::pair<uint64_t, uint64_t>> r;
  ASSERT_TRUE(make_pv_free_space_map(vg, 0, kPeStart + 16 * kExtent)->unused_ranges(r).ok());
  std::vector<std::pair<uint64_t, uint64_t>> want = {
      {kPeStart, 2 * kExtent}, {kPeStart + 5 * kExtent, 3 * kExtent}, {kPeStart + 10 * kExtent, 6 * kExtent}};
  EXPECT_EQ(r, want);
  // A device cut short in extent 12: nothing past its end.
  ASSERT_TRUE(make_pv_free_space_map(vg, 0, kPeStart + 12 * kExtent)->unused_ranges(r).ok());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2], (std::pair<uint64_t, uint64_t>{kPeStart + 10 * kExtent, 2 * kExtent}));
}

TEST(LvmFreeSpace, UnmappedTypesKeepTheWholePv) {
  std::string odd = "o {\nid = \"y\"\nstatus = [\"VISIBLE\"]\nsegment1 {\nstart_extent = 0\nextent_count = 1\n"
                    "type = \"something-new\"\n}\n}\n";
  auto vg = vg_with(linear("a", 0, 1) + odd);
  std::vector<std::pair<uint64_t, uint64_t>> r{{1, 1}};
  ASSERT_TRUE(make_pv_free_space_map(vg, 0, kPeStart + 16 * kExtent)->unused_ranges(r).ok());
  EXPECT_TRUE(r.empty());
}

// --- The PV in sparsify's map: free extents, and each LV by its own content.

const std::string kUuid0 = "AAAAAAaaaaBBBBbbbbCCCCccccDDDDdd", kUuid1 = "EEEEEEeeeeFFFFffffGGGGggggHHHHhh";

std::string pv_text(const std::string& name, const std::string& uuid) {
  return name + " {\nid = \"" + uuid.substr(0, 6) + "-" + uuid.substr(6, 4) + "-" + uuid.substr(10, 4) + "-" +
         uuid.substr(14, 4) + "-" + uuid.substr(18, 4) + "-" + uuid.substr(22, 4) + "-" + uuid.substr(26) +
         "\"\ndev_size = 4096\npe_start = 2048\npe_count = 16\n}\n";
}

std::string lv_on(const std::string& name, const std::string& pv, uint64_t start, uint64_t count, bool visible = true) {
  return name + " {\nid = \"x\"\nstatus = [\"READ\"" + (visible ? ", \"VISIBLE\"" : "") +
         "]\nsegment1 {\nstart_extent = 0\nextent_count = " + std::to_string(count) +
         "\ntype = \"striped\"\nstripe_count = 1\nstripes = [\"" + pv + "\", " + std::to_string(start) + "]\n}\n}\n";
}

// A whole-disk PV of 16 extents with swap signatures at the start of the given extents.
std::shared_ptr<BlockDevice> pv_disk(const std::string& uuid, const std::string& text,
                                     std::initializer_list<uint64_t> swap_at) {
  test::PvImageSpec spec;
  spec.uuid = uuid;
  spec.size = kPeStart + 16 * kExtent;
  auto bytes = test::make_pv_image(spec, text);
  for (uint64_t e : swap_at) std::memcpy(bytes.data() + kPeStart + e * kExtent + 4086, "SWAPSPACE2", 10);
  return std::make_shared<MemoryDevice>(std::move(bytes));
}

const LvSparseReport* find(const VolumeSparseReport& v, const std::string& name) {
  for (const auto& l : v.lvs)
    if (l.name == name) return &l;
  return nullptr;
}

TEST(LvmSparseMap, FreeExtentsAndEachLvByItsContent) {
  const std::string snap = "snap0 {\nid = \"s\"\nstatus = [\"READ\"]\nsegment1 {\nstart_extent = 0\nextent_count = 1\n"
                           "type = \"snapshot\"\norigin = \"origin\"\ncow_store = \"cow\"\n}\n}\n";
  const std::string lvs = lv_on("sw", "pv0", 0, 2) + lv_on("origin", "pv0", 2, 2) + lv_on("hid", "pv0", 4, 1, false) +
                          lv_on("unk", "pv0", 5, 1) + lv_on("cow", "pv0", 6, 1) + snap;
  auto disk = pv_disk(kUuid0, test::vg_text("vg", 1, 128, pv_text("pv0", kUuid0), lvs), {0, 2, 4, 6});
  auto m = build_sparse_map(disk);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->volumes.size(), 1u);
  const VolumeSparseReport& v = m->volumes[0];
  EXPECT_EQ(v.type, "LVM2_member");
  EXPECT_TRUE(v.mapped) << v.reason;
  EXPECT_EQ(v.vg, "vg");
  EXPECT_EQ(v.free_extent_bytes, 9 * kExtent);
  ASSERT_EQ(v.lvs.size(), 5u);
  const LvSparseReport* sw = find(v, "vg/sw");
  ASSERT_TRUE(sw);
  EXPECT_TRUE(sw->mapped) << sw->reason;
  EXPECT_EQ(sw->type, "swap");
  EXPECT_EQ(sw->unused_bytes, 2 * kExtent - 4096);
  EXPECT_FALSE(find(v, "vg/origin")->mapped);  // a snapshot reads the origin's free blocks too
  EXPECT_NE(find(v, "vg/origin")->reason.find("another LV reads it"), std::string::npos);
  EXPECT_NE(find(v, "vg/cow")->reason.find("another LV reads it"), std::string::npos);
  EXPECT_NE(find(v, "vg/hid")->reason.find("hidden"), std::string::npos);
  EXPECT_EQ(find(v, "vg/unk")->reason, "unknown content");
  const ByteRanges want = {{kPeStart + 4096, 2 * kExtent - 4096}, {kPeStart + 7 * kExtent, 9 * kExtent}};
  EXPECT_EQ(m->unused, want);
  EXPECT_EQ(v.unused_bytes, m->unused_bytes());
  EXPECT_NE(sparse_summary(*m).find("  LV vg/sw (swap, 128 KiB): 124 KiB unused on this PV, left out"),
            std::string::npos)
      << sparse_summary(*m);
}

TEST(LvmSparseMap, OverlappingLvsKeepTheirExtents) {
  const std::string lvs = lv_on("a", "pv0", 0, 2) + lv_on("b", "pv0", 1, 2);
  auto disk = pv_disk(kUuid0, test::vg_text("vg", 1, 128, pv_text("pv0", kUuid0), lvs), {0, 1});
  auto m = build_sparse_map(disk);
  ASSERT_TRUE(m.ok()) << m.status().message();
  for (const auto& l : m->volumes.at(0).lvs) EXPECT_NE(l.reason.find("overlap"), std::string::npos) << l.name;
  EXPECT_EQ(m->unused, (ByteRanges{{kPeStart + 3 * kExtent, 13 * kExtent}}));
}

TEST(LvmSparseMap, AnLvOnTwoDisksIsMappedOnBothAndKeptWithOnlyOne) {
  // span: extents 0-1 of pv0 (disk 0) then 0-1 of pv1 (disk 1), swap; solo: on disk 0 only, swap.
  const std::string pvs = pv_text("pv0", kUuid0) + pv_text("pv1", kUuid1);
  const std::string lvs =
      "span {\nid = \"x\"\nstatus = [\"VISIBLE\"]\nsegment1 {\nstart_extent = 0\nextent_count = 2\ntype = "
      "\"striped\"\nstripe_count = 1\nstripes = [\"pv0\", 0]\n}\nsegment2 {\nstart_extent = 2\nextent_count = 2\n"
      "type = \"striped\"\nstripe_count = 1\nstripes = [\"pv1\", 0]\n}\n}\n" +
      lv_on("solo", "pv0", 4, 1);
  const std::string text = test::vg_text("vg", 1, 128, pvs, lvs);
  auto d0 = pv_disk(kUuid0, text, {0, 4});
  auto d1 = pv_disk(kUuid1, text, {});
  auto both = build_sparse_maps({{"d0", d0}, {"d1", d1}});
  ASSERT_TRUE(both.ok()) << both.status().message();
  ASSERT_EQ(both->size(), 2u);
  // Disk 0: span's part after its swap header, then the free extents 2-3; solo after its header, free 5-15.
  EXPECT_EQ((*both)[0].unused, (ByteRanges{{kPeStart + 4096, 4 * kExtent - 4096},
                                           {kPeStart + 4 * kExtent + 4096, 12 * kExtent - 4096}}));
  EXPECT_EQ((*both)[1].unused, (ByteRanges{{kPeStart, 16 * kExtent}}));
  EXPECT_EQ(find((*both)[1].volumes.at(0), "vg/span")->unused_bytes, 2 * kExtent);
  auto alone = build_sparse_map(d0);
  ASSERT_TRUE(alone.ok());
  const LvSparseReport* span = find(alone->volumes.at(0), "vg/span");
  ASSERT_TRUE(span);
  EXPECT_FALSE(span->mapped);
  EXPECT_NE(span->reason.find("not among the given disks"), std::string::npos) << span->reason;
  EXPECT_TRUE(find(alone->volumes.at(0), "vg/solo")->mapped);
  EXPECT_EQ(alone->unused, (ByteRanges{{kPeStart + 2 * kExtent, 2 * kExtent},
                                        {kPeStart + 4 * kExtent + 4096, 12 * kExtent - 4096}}));
}

TEST(LvmSparseMap, APvOnTwoDisksIsCopiedWholeNotAnError) {
  // The same PV (a disk given twice): the scan cannot choose, so both copies are kept whole and say why.
  const std::string text = test::vg_text("vg", 1, 128, pv_text("pv0", kUuid0), lv_on("sw", "pv0", 0, 2));
  auto d0 = pv_disk(kUuid0, text, {0});
  auto d1 = pv_disk(kUuid0, text, {0});
  auto maps = build_sparse_maps({{"d0", d0}, {"d1", d1}});
  ASSERT_TRUE(maps.ok()) << maps.status().message();
  for (const auto& m : *maps) {
    EXPECT_TRUE(m.unused.empty());
    EXPECT_FALSE(m.volumes.at(0).mapped);
    EXPECT_NE(m.volumes.at(0).reason.find("is on both"), std::string::npos) << m.volumes.at(0).reason;
  }
}

}  // namespace
}  // namespace vdkit::guestfs
