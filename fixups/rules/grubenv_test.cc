// Unit tests for grubenv: variables set and read, kernelopts rewritten, the 1024-byte block kept.
#include "fixups/rules/grubenv.h"

#include <gtest/gtest.h>

#include <string>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(Grubenv, SetsAVariableInTheBlock) {
  std::string env = "# GRUB Environment Block\nsaved_entry=old\nkernelopts=root=/dev/sda1 ro\n";
  env += std::string(1024 - env.size(), '#');
  auto out = set_grubenv_var(env, "saved_entry", "a>b\\c");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->size(), 1024u);
  EXPECT_EQ(out->substr(0, 74), "# GRUB Environment Block\nsaved_entry=a>b\\\\c\nkernelopts=root=/dev/sda1 ro\n#");
  EXPECT_EQ(grubenv_var(*out, "saved_entry"), "a>b\\c");
  EXPECT_EQ(set_grubenv_var(*out, "saved_entry", "a>b\\c"), *out);
  // Added before the padding when absent.
  std::string bare = "# GRUB Environment Block\n" + std::string(1024 - 25, '#');
  out = set_grubenv_var(bare, "saved_entry", "x");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "# GRUB Environment Block\nsaved_entry=x\n" + std::string(1024 - 39, '#'));
  EXPECT_FALSE(set_grubenv_var(bare, "saved_entry", std::string(1000, 'x')));  // no room in the block
  EXPECT_EQ(set_grubenv_var("a=1", "b", "2"), "a=1\nb=2\n");                   // not a block: no padding
  EXPECT_EQ(grubenv_var("a=1\na=2\n", "a"), "2");
  EXPECT_EQ(grubenv_var("a=1\n", "b"), std::nullopt);
}

TEST(Grubenv, KeepsTheBlockSize) {
  std::string env = "# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n";
  env += std::string(1024 - env.size(), '#');
  CmdlineEdit e{test_map(), true, {}};
  std::string out = rewrite_grubenv(env, e);
  EXPECT_EQ(out.size(), 1024u);
  EXPECT_NE(out.find("kernelopts=root=UUID=11111111-2222-3333-4444-555555555555 ro\n#"), std::string::npos);
  EXPECT_EQ(rewrite_grubenv(out, e), out);
  // A command line that no longer fits the 1024-byte block leaves the file as it is.
  std::string full = "# GRUB Environment Block\nkernelopts=root=/dev/xvda1 " + std::string(960, 'x') + "\n";
  full += std::string(1024 - full.size(), '#');
  ASSERT_EQ(full.size(), 1024u);
  EXPECT_EQ(rewrite_grubenv(full, e), full);
}

}  // namespace
}  // namespace vdkit::fixups
