// Unit tests for Xen/SCSI/IDE device names: parsed, spelled, and found in text.
#include "fixups/rules/device_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdkit::fixups {
namespace {

TEST(DeviceName, Parses) {
  auto d = parse_device_name("/dev/xvda1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->prefix, "xvd");
  EXPECT_EQ(d->disk, 0);
  EXPECT_EQ(d->partition, 1);
  d = parse_device_name("/dev/xvde");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->disk, 4);
  EXPECT_EQ(d->partition, 0);
  d = parse_device_name("/dev/sdab12");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->disk, 27);
  EXPECT_EQ(disk_letters(27), "ab");
  EXPECT_FALSE(parse_device_name("/dev/sda0"));
  EXPECT_FALSE(parse_device_name("/dev/mapper/vg-root"));
  EXPECT_FALSE(parse_device_name("/dev/sd"));
  EXPECT_FALSE(parse_device_name("/dev/sda1x"));
  EXPECT_FALSE(parse_device_name("UUID=abc"));
}

TEST(DeviceName, FoundInText) {
  EXPECT_EQ(find_device_names("root=/dev/xvda1 /dev/vda1 /dev/sdb /dev/mapper/x"),
            (std::vector<std::string>{"/dev/xvda1", "/dev/sdb"}));
}

}  // namespace
}  // namespace vdkit::fixups
