// Unit tests for /etc/default/grub: options inside GRUB_CMDLINE_LINUX's quotes, the UUID switch, GRUB_DEFAULT.
#include "fixups/rules/default_grub.h"

#include <gtest/gtest.h>

#include <string>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(DefaultGrub, AppendsInsideTheQuotesOfGrubCmdlineLinuxOnly) {
  CmdlineEdit e{nullptr, true, {"net.ifnames=0"}};
  std::string in =
      "GRUB_CMDLINE_LINUX=\"crashkernel=auto console=hvc0\"\nGRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\n"
      "GRUB_CMDLINE_XEN=\"dom0_mem=1G\"\n";
  std::string r = rewrite_default_grub(in, e, true);
  EXPECT_EQ(r,
            "GRUB_CMDLINE_LINUX=\"crashkernel=auto console=ttyS0 net.ifnames=0\"\n"
            "GRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\nGRUB_CMDLINE_XEN=\"dom0_mem=1G\"\n");
  EXPECT_EQ(rewrite_default_grub(r, e, true), r);
  EXPECT_EQ(rewrite_default_grub("GRUB_CMDLINE_LINUX=''\n", e, true), "GRUB_CMDLINE_LINUX='net.ifnames=0'\n");
  EXPECT_EQ(rewrite_default_grub("GRUB_CMDLINE_LINUX=\n", e, true), "GRUB_CMDLINE_LINUX=net.ifnames=0\n");
  std::string quiet = rewrite_default_grub("GRUB_CMDLINE_LINUX=quiet\n", e, true);
  EXPECT_EQ(quiet, "GRUB_CMDLINE_LINUX=\"quiet net.ifnames=0\"\n");
  EXPECT_EQ(rewrite_default_grub(quiet, e, true), quiet);
  // A value that is not one quoted string is left without the option rather than broken.
  EXPECT_EQ(rewrite_default_grub("GRUB_CMDLINE_LINUX=\"a\"\"b\" # c\n", e, true), "GRUB_CMDLINE_LINUX=\"a\"\"b\" # c\n");
}

TEST(DefaultGrub, SetsGrubDefaultUnlessSaved) {
  EXPECT_EQ(set_default_grub_default("GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n", "a>b"),
            "GRUB_DEFAULT=\"a>b\"\nGRUB_TIMEOUT=5\n");
  EXPECT_EQ(set_default_grub_default("GRUB_DEFAULT=\"a>b\"\n", "a>b"), "GRUB_DEFAULT=\"a>b\"\n");
  EXPECT_EQ(set_default_grub_default("GRUB_DEFAULT=saved\n", "a>b"), "GRUB_DEFAULT=saved\n");
  EXPECT_EQ(set_default_grub_default("#GRUB_DEFAULT=0\nGRUB_TIMEOUT=5", "x"),
            "#GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_DEFAULT=\"x\"\n");
  EXPECT_EQ(set_default_grub_default("GRUB_DEFAULT=0\n", "it's \"x\""), "GRUB_DEFAULT=0\n");  // cannot be quoted: kept
}

TEST(DefaultGrub, CmdlineAndUuidSwitch) {
  CmdlineEdit e{test_map(), true, {}};
  std::string in = "GRUB_CMDLINE_LINUX=\"console=hvc0 root=/dev/sda1\"\nGRUB_DISABLE_LINUX_UUID=true\n#GRUB_X=1\n";
  EXPECT_EQ(rewrite_default_grub(in, e, true),
            "GRUB_CMDLINE_LINUX=\"console=ttyS0 root=UUID=11111111-2222-3333-4444-555555555555\"\n"
            "GRUB_DISABLE_LINUX_UUID=false\n#GRUB_X=1\n");
  EXPECT_NE(rewrite_default_grub(in, e, false).find("GRUB_DISABLE_LINUX_UUID=true"), std::string::npos);
}

}  // namespace
}  // namespace vdkit::fixups
