// Unit tests for the fstab and crypttab rewrites: only the device field changes, every other byte stays.
#include "fixups/rules/fstab.h"

#include <gtest/gtest.h>

#include <string>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(Fstab, RewritesDeviceFieldOnlyAndKeepsBytes) {
  std::string in =
      "# /dev/xvda1 in a comment stays\r\n/dev/xvda1\t/  ext4 defaults 1 1\r\n  /dev/xvda2 none swap sw 0 0\n"
      "/dev/xvdb1 /data ext4 defaults 0 2\nLABEL=x /x ext4 defaults 0 0";
  std::string out = rewrite_fstab(in, test_map());
  EXPECT_EQ(out,
            "# /dev/xvda1 in a comment stays\r\nUUID=11111111-2222-3333-4444-555555555555\t/  ext4 defaults 1 1\r\n"
            "  LABEL=SWAP none swap sw 0 0\n/dev/xvdb1 /data ext4 defaults 0 2\nLABEL=x /x ext4 defaults 0 0");
  EXPECT_EQ(rewrite_fstab(out, test_map()), out);
}

TEST(Crypttab, RewritesSecondField) {
  std::string in = "luks-root /dev/sda1 none luks\n";
  EXPECT_EQ(rewrite_crypttab(in, test_map()), "luks-root UUID=11111111-2222-3333-4444-555555555555 none luks\n");
}

TEST(Fstab, AlignedColumnsStayAligned) {
  // Padded with spaces: the mount points start at one column before and after, further right where needed, with
  // the narrowest gap the file had.
  std::string in =
      "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
      "/dev/xvda1      /               ext4    errors=remount-ro 0       1\n"
      "/dev/xvda2      none            swap    sw              0       0\n"
      "proc            /proc           proc    defaults        0       0\n";
  std::string out = rewrite_fstab(in, test_map());
  EXPECT_EQ(out,
            "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
            "UUID=11111111-2222-3333-4444-555555555555      /               ext4    errors=remount-ro 0       1\n"
            "LABEL=SWAP                                     none            swap    sw              0       0\n"
            "proc                                           /proc           proc    defaults        0       0\n");
  EXPECT_EQ(rewrite_fstab(out, test_map()), out);
  // Padded with tabs: tabs again, to the next common tab stop.
  in = "/dev/xvda1\t/\text4\tdefaults\t0 1\nproc\t\t/proc\tproc\tdefaults\t0 0\n";
  EXPECT_EQ(rewrite_fstab(in, test_map()),
            "UUID=11111111-2222-3333-4444-555555555555\t/\text4\tdefaults\t0 1\n"
            "proc\t\t\t\t\t\t/proc\tproc\tdefaults\t0 0\n");
  // Single spaces that happen to line up are left single.
  in = "/dev/xvda1 / ext4 defaults 0 1\n/dev/xvdb1 /b ext4 defaults 0 2\n";
  EXPECT_EQ(rewrite_fstab(in, test_map()),
            "UUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1\n/dev/xvdb1 /b ext4 defaults 0 2\n");
}

TEST(Crypttab, AlignedColumnsStayAligned) {
  std::string in = "root   /dev/xvda1   none  luks\nswap   /dev/xvdb9   /dev/urandom swap\n";
  EXPECT_EQ(rewrite_crypttab(in, test_map()),
            "root   UUID=11111111-2222-3333-4444-555555555555   none  luks\n"
            "swap   /dev/xvdb9                                  /dev/urandom swap\n");
}

}  // namespace
}  // namespace vdkit::fixups
