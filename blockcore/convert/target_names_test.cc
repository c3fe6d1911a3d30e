// Unit tests for the several-targets naming rule.
#include "blockcore/convert/target_names.h"

#include <gtest/gtest.h>

namespace vdkit {
namespace {

TEST(TargetNames, AfterTheSourceOrNameDiskN) {
  auto names = target_names({{"/x/web1-disk0.vmdk", true}, {"nbd://h/e", false}, {"/y/data", true}}, "web1", "qcow2");
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"web1-disk0.qcow2", "web1-disk1.qcow2", "data.qcow2"}));
  EXPECT_FALSE(source_has_file_name("nbd+unix:///e?socket=/s"));
  EXPECT_FALSE(source_has_file_name("-"));
  EXPECT_TRUE(source_has_file_name("a/b.vmdk"));
}

TEST(TargetNames, CollisionsAndMissingNamesAreErrors) {
  auto st = target_names({{"/a/d.vmdk", true}, {"/b/d.qcow2", true}}, "g", "raw").status();
  EXPECT_EQ(st.message(), "disks 0 (/a/d.vmdk) and 1 (/b/d.qcow2) would both be written to d.raw");
  EXPECT_FALSE(target_names({{"nbd://h/e", false}}, "", "raw").ok());
}

}  // namespace
}  // namespace vdkit
