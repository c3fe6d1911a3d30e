// Unit tests for inittab and securetty: Xen console gettys move to ttyS0, which securetty gains.
#include "fixups/rules/consoles.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdkit::fixups {
namespace {

TEST(Consoles, InittabAndSecuretty) {
  std::string in = "co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n# xvc0 comment\nx:5:respawn:/bin/xvc0\n";
  EXPECT_EQ(rewrite_inittab(in),
            "co:2345:respawn:/sbin/agetty ttyS0 9600 vt100-nav\n# xvc0 comment\nx:5:respawn:/bin/xvc0\n");
  EXPECT_EQ(inittab_getty_ttys(in), std::vector<std::string>{"xvc0"});
  EXPECT_EQ(rewrite_securetty("tty1\nxvc0"), "tty1\nxvc0\nttyS0\n");
  EXPECT_EQ(rewrite_securetty("ttyS0\n"), "ttyS0\n");
}

}  // namespace
}  // namespace vdkit::fixups
