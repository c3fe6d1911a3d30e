// Unit tests for shell-syntax KEY=VALUE files: the last assignment wins, quotes and comments go.
#include "fixups/rules/shell_vars.h"

#include <gtest/gtest.h>

namespace vdkit::fixups {
namespace {

TEST(ShellVar, LastAssignmentWinsQuotesGo) {
  EXPECT_EQ(shell_var("A=1\nexport B=\"x y\"\nA=2 # c\n", "A"), "2");
  EXPECT_EQ(shell_var("A=1\nexport B=\"x y\"\n", "B"), "x y");
}

}  // namespace
}  // namespace vdkit::fixups
