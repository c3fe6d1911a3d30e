// Unit tests for the device-name mapping of a guest disk: every Xen/SCSI/IDE prefix, fallbacks, the boot disk.
#include "fixups/disk.h"

#include <gtest/gtest.h>

#include <vector>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(DeviceMapper, MapsEveryPrefixAndFallsBack) {
  auto map = test_map();
  EXPECT_EQ(map("/dev/xvda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/sda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/hda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/xvda2"), "LABEL=SWAP");  // no UUID: the label
  EXPECT_EQ(map("/dev/xvda3"), std::nullopt);  // no such partition
  EXPECT_EQ(map("/dev/xvdb1"), std::nullopt);  // another disk
  EXPECT_EQ(map("/dev/xvda"), std::nullopt);   // whole disk of a partitioned disk
  EXPECT_EQ(map("UUID=11111111-2222-3333-4444-555555555555"), std::nullopt);

  std::vector<FsInfo> whole(1);
  whole[0].type = "ext4";
  whole[0].uuid = "aaaaaaaa-0000-0000-0000-000000000000";
  whole[0].label = "root";
  DeviceMapper vd(whole, DeviceNaming::kVd, 4), lab(whole, DeviceNaming::kLabel, 4);
  EXPECT_EQ(vd.map("/dev/xvde"), "/dev/vda");
  EXPECT_EQ(vd.map("/dev/xvde1"), std::nullopt);
  EXPECT_EQ(lab.map("/dev/xvde"), "LABEL=root");
  EXPECT_EQ(vd.map("/dev/xvda"), std::nullopt);  // not the boot disk
}

}  // namespace
}  // namespace vdkit::fixups
