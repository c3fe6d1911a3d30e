// Unit tests for grub legacy: Xen entries read, the default set, kernel lines rewritten.
#include "fixups/rules/grub_legacy.h"

#include <gtest/gtest.h>

#include <string>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(GrubLegacy, ParsesXenEntriesAndSetsDefault) {
  std::string in =
      "default 0\ntimeout=5\ntitle Xen\n  root (hd0,0)\n  kernel /xen.gz dom0_mem=512M\n"
      "  module /vmlinuz-2.6.18-xen ro root=/dev/xvda1\n  module /initrd-2.6.18-xen.img\ntitle Plain\n"
      "  kernel /vmlinuz-2.6.18 ro root=/dev/xvda1\n  initrd /initrd-2.6.18.img\n";
  BootMenu m = parse_grub_legacy(in);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[0].hypervisor, "/xen.gz");
  EXPECT_EQ(m.entries[0].kernel, "/vmlinuz-2.6.18-xen");
  EXPECT_EQ(m.entries[0].initrd, "/initrd-2.6.18-xen.img");
  EXPECT_EQ(m.entries[0].cmdline, "ro root=/dev/xvda1");
  EXPECT_EQ(m.default_index, 0);
  std::string d = set_grub_legacy_default(in, 1);
  EXPECT_EQ(d.substr(0, 10), "default 1\n");
  EXPECT_EQ(set_grub_legacy_default(d, 1), d);
  EXPECT_EQ(set_grub_legacy_default("title x\n", 0), "default=0\ntitle x\n");
  CmdlineEdit e{test_map(), true, {}};
  std::string r = rewrite_grub_legacy(in, e);
  EXPECT_NE(r.find("module /vmlinuz-2.6.18-xen ro root=UUID=11111111"), std::string::npos);
  EXPECT_EQ(rewrite_grub_legacy(r, e), r);
}

}  // namespace
}  // namespace vdkit::fixups
