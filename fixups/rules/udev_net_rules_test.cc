// Unit tests for 70-persistent-net.rules: emptied.
#include "fixups/rules/udev_net_rules.h"

#include <gtest/gtest.h>

namespace vdkit::fixups {
namespace {

TEST(UdevNetRules, Emptied) { EXPECT_EQ(rewrite_persistent_net_rules("SUBSYSTEM==\"net\"\n"), ""); }

}  // namespace
}  // namespace vdkit::fixups
