// Unit tests for rpm's version order, as grub's blscfg sorts BLS entries by it.
#include "fixups/rules/rpm_version.h"

#include <gtest/gtest.h>

#include "fixups/rules/bls.h"

namespace vdkit::fixups {
namespace {

TEST(Bls, VersionsCompareAsRpmDoes) {
  EXPECT_LT(rpm_vercmp("4.18.0-80.el8.x86_64", "4.18.0-147.el8.x86_64"), 0);
  EXPECT_GT(rpm_vercmp("4.18.0-147.el8.x86_64", "4.18.0-80.el8.x86_64"), 0);
  EXPECT_EQ(rpm_vercmp("1.01", "1.1"), 0);
  EXPECT_LT(rpm_vercmp("1.0~rc1", "1.0"), 0);
  EXPECT_GT(rpm_vercmp("1.0a", "1.0"), 0);
  EXPECT_GT(rpm_vercmp("1.1", "1.a"), 0);  // numbers are newer than letters
  EXPECT_LT(rpm_vercmp("0-rescue-abc", "4.18.0"), 0);
  EXPECT_EQ(parse_bls_entry("title x\nversion 4.18.0-80.el8\n").version, "4.18.0-80.el8");
}

}  // namespace
}  // namespace vdkit::fixups
