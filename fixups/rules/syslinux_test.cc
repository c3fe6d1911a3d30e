// Unit tests for syslinux/extlinux: the LABEL menu read, the DEFAULT label set.
#include "fixups/rules/syslinux.h"

#include <gtest/gtest.h>

#include <string>

namespace vdkit::fixups {
namespace {

TEST(Syslinux, AppendAndDefault) {
  std::string in =
      "DEFAULT xen\nLABEL xen\n KERNEL vmlinuz-xen\n APPEND root=/dev/xvde\nLABEL kvm\n LINUX vmlinuz\n"
      " append initrd=initrd.img root=/dev/xvde console=hvc0\n";
  BootMenu m = parse_syslinux(in);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.default_index, 0);
  EXPECT_EQ(m.entries[1].initrd, "initrd.img");
  std::string d = set_syslinux_default(in, "kvm");
  EXPECT_EQ(d.substr(0, 12), "DEFAULT kvm\n");
  EXPECT_EQ(set_syslinux_default(d, "kvm"), d);
}

}  // namespace
}  // namespace vdkit::fixups
