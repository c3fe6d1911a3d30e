// Tests for the LVM free-space map: the extents no LV uses, relative to the PV device, clipped to it.
#include "guestfs/lvm_free_space.h"

#include <gtest/gtest.h>

#include "blockcore/lvm/lvm_volume.h"
#include "blockcore/testing/lvm_image.h"
#include "blockcore/testing/memory_device.h"

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

}  // namespace
}  // namespace vdkit::guestfs
