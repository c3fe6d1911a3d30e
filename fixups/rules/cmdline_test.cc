// Unit tests for kernel command lines: root/resume/console rewrites, appended options and where they may go.
#include "fixups/rules/cmdline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fixups/rules/bls.h"
#include "fixups/rules/grub2.h"
#include "fixups/rules/grub_legacy.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/syslinux.h"
#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

TEST(Cmdline, RootResumeConsole) {
  CmdlineEdit e{test_map(), true, {}};
  EXPECT_EQ(rewrite_cmdline(" ro root=/dev/xvda1  resume=/dev/sda2 console=xvc0,9600 console=hvc0 console=tty0", e),
            " ro root=UUID=11111111-2222-3333-4444-555555555555  resume=LABEL=SWAP console=ttyS0,9600 console=ttyS0 "
            "console=tty0");
  EXPECT_EQ(rewrite_cmdline("\"root=/dev/xvda1 quiet\"", e),
            "\"root=UUID=11111111-2222-3333-4444-555555555555 quiet\"");
  EXPECT_EQ(rewrite_cmdline("root=LABEL=/ noroot=/dev/xvda1", e), "root=LABEL=/ noroot=/dev/xvda1");
}

TEST(Cmdline, AppendsOptionsWhenAbsent) {
  CmdlineEdit e{test_map(), true, {"net.ifnames=0", "biosdevname=0"}};
  EXPECT_EQ(rewrite_cmdline(" ro root=/dev/xvda1", e),
            " ro root=UUID=11111111-2222-3333-4444-555555555555 net.ifnames=0 biosdevname=0");
  EXPECT_EQ(rewrite_cmdline("ro quiet \r", e), "ro quiet net.ifnames=0 biosdevname=0 \r");  // before trailing blanks
  EXPECT_EQ(rewrite_cmdline("", e), "net.ifnames=0 biosdevname=0");
  // A key already set, to anything, is the guest's choice.
  EXPECT_EQ(rewrite_cmdline("ro net.ifnames=1 biosdevname=0", e), "ro net.ifnames=1 biosdevname=0");
  EXPECT_EQ(rewrite_cmdline("ro net.ifnames", e), "ro net.ifnames biosdevname=0");
  EXPECT_EQ(rewrite_cmdline("ro xnet.ifnames=0", e), "ro xnet.ifnames=0 net.ifnames=0 biosdevname=0");
  std::string once = rewrite_cmdline("ro", e);
  EXPECT_EQ(rewrite_cmdline(once, e), once);
  EXPECT_TRUE(cmdline_has_key("a \"net.ifnames=0\"", "net.ifnames"));
  EXPECT_FALSE(cmdline_has_key("net.ifnamesx=0", "net.ifnames"));
}

TEST(Cmdline, AppendsOnlyToLinuxCommandLines) {
  CmdlineEdit e{nullptr, true, {"net.ifnames=0"}};
  // grub legacy Xen entry: not the hypervisor line, not the initrd module; the plain entry's kernel line.
  std::string legacy =
      "title Xen\n  kernel /xen.gz-2.6.18 dom0_mem=512M\n  module /vmlinuz-2.6.18-xen ro root=/dev/xvda1\n"
      "  module /initrd-2.6.18-xen.img\ntitle Plain\n  kernel (hd0,0)/vmlinuz-2.6.18 ro\n  kernel\n";
  EXPECT_EQ(rewrite_grub_legacy(legacy, e),
            "title Xen\n  kernel /xen.gz-2.6.18 dom0_mem=512M\n  module /vmlinuz-2.6.18-xen ro root=/dev/xvda1 "
            "net.ifnames=0\n  module /initrd-2.6.18-xen.img\ntitle Plain\n  kernel (hd0,0)/vmlinuz-2.6.18 ro "
            "net.ifnames=0\n  kernel\n");
  std::string grub2 =
      "menuentry 'A' {\n\tlinux /vmlinuz-a root=UUID=x ro\r\n\tinitrd /initrd-a\n}\nmenuentry 'X' {\n"
      "\tmultiboot /xen.gz dom0_mem=1G\n\tmodule /vmlinuz-x root=UUID=x\n\tmodule --nounzip /initrd-x\n}\n";
  std::string r = rewrite_grub2_cfg(grub2, e);
  EXPECT_EQ(r,
            "menuentry 'A' {\n\tlinux /vmlinuz-a root=UUID=x ro net.ifnames=0\r\n\tinitrd /initrd-a\n}\n"
            "menuentry 'X' {\n\tmultiboot /xen.gz dom0_mem=1G\n\tmodule /vmlinuz-x root=UUID=x net.ifnames=0\n"
            "\tmodule --nounzip /initrd-x\n}\n");
  EXPECT_EQ(rewrite_grub2_cfg(r, e), r);
  // BLS: a literal options line gains it; one that takes $kernelopts leaves it to grubenv.
  EXPECT_EQ(rewrite_bls_entry("options root=UUID=x ro\n", e), "options root=UUID=x ro net.ifnames=0\n");
  EXPECT_EQ(rewrite_bls_entry("options $kernelopts $tuned_params\n", e), "options $kernelopts $tuned_params\n");
  std::string env = "# GRUB Environment Block\nkernelopts=root=UUID=x ro \n";
  env += std::string(1024 - env.size(), '#');
  std::string out = rewrite_grubenv(env, e);
  EXPECT_EQ(out.size(), 1024u);
  EXPECT_NE(out.find("kernelopts=root=UUID=x ro net.ifnames=0 \n#"), std::string::npos);
  EXPECT_EQ(rewrite_grubenv(out, e), out);
  // syslinux: APPEND lines, but not mboot.c32's "xen --- linux --- initrd".
  EXPECT_EQ(rewrite_syslinux("LABEL l\n  APPEND root=UUID=x\nLABEL x\n  APPEND xen.gz --- vmlinuz ro --- initrd\n", e),
            "LABEL l\n  APPEND root=UUID=x net.ifnames=0\nLABEL x\n  APPEND xen.gz --- vmlinuz ro --- initrd\n");
}

TEST(Cmdline, FindsConsoles) {
  EXPECT_EQ(find_consoles("a console=tty0 \"console=ttyS0,115200\""),
            (std::vector<std::string>{"tty0", "ttyS0,115200"}));
}

}  // namespace
}  // namespace vdkit::fixups
