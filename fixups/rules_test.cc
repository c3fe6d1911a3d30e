// Unit tests for the config rewriters: expected edits, bytes kept, idempotence, and totality on arbitrary input.
#include "fixups/rules.h"

#include <gtest/gtest.h>

#include <random>

#include "fixups/disk.h"

namespace vdkit::fixups {
namespace {

DeviceMapFn test_map() {
  std::vector<FsInfo> fs(2);
  fs[0].partition = 1;
  fs[0].type = "ext4";
  fs[0].uuid = "11111111-2222-3333-4444-555555555555";
  fs[1].partition = 2;
  fs[1].type = "swap";
  fs[1].label = "SWAP";
  static DeviceMapper* m = new DeviceMapper(fs, DeviceNaming::kUuid, 0);
  return m->fn();
}

TEST(DeviceName, Parses) {
  auto d = parse_device_name("/dev/xvda1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->prefix, "xvd");
  EXPECT_EQ(d->disk, 0);
  EXPECT_EQ(d->partition, 1);
  d = parse_device_name("/dev/xvde");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->disk, 4);
  EXPECT_EQ(d->partition, 0);
  d = parse_device_name("/dev/sdab12");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->disk, 27);
  EXPECT_EQ(disk_letters(27), "ab");
  EXPECT_FALSE(parse_device_name("/dev/sda0"));
  EXPECT_FALSE(parse_device_name("/dev/mapper/vg-root"));
  EXPECT_FALSE(parse_device_name("/dev/sd"));
  EXPECT_FALSE(parse_device_name("/dev/sda1x"));
  EXPECT_FALSE(parse_device_name("UUID=abc"));
}

TEST(DeviceMapper, MapsEveryPrefixAndFallsBack) {
  auto map = test_map();
  EXPECT_EQ(map("/dev/xvda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/sda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/hda1"), "UUID=11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(map("/dev/xvda2"), "LABEL=SWAP");  // no UUID: the label
  EXPECT_EQ(map("/dev/xvda3"), std::nullopt);  // no such partition
  EXPECT_EQ(map("/dev/xvdb1"), std::nullopt);  // another disk
  EXPECT_EQ(map("/dev/xvda"), std::nullopt);   // whole disk of a partitioned disk
  EXPECT_EQ(map("UUID=11111111-2222-3333-4444-555555555555"), std::nullopt);

  std::vector<FsInfo> whole(1);
  whole[0].type = "ext4";
  whole[0].uuid = "aaaaaaaa-0000-0000-0000-000000000000";
  whole[0].label = "root";
  DeviceMapper vd(whole, DeviceNaming::kVd, 4), lab(whole, DeviceNaming::kLabel, 4);
  EXPECT_EQ(vd.map("/dev/xvde"), "/dev/vda");
  EXPECT_EQ(vd.map("/dev/xvde1"), std::nullopt);
  EXPECT_EQ(lab.map("/dev/xvde"), "LABEL=root");
  EXPECT_EQ(vd.map("/dev/xvda"), std::nullopt);  // not the boot disk
}

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

TEST(Grub2, EntriesSubmenusAndDefault) {
  std::string in =
      "set default=\"1\"\nmenuentry 'A' {\n linux /vmlinuz-a root=/dev/sda1\n initrd /initrd-a\n}\n"
      "submenu 'More' {\n menuentry \"B\" --class x {\n  linux16 /vmlinuz-b root=/dev/sda1 console=hvc0\n }\n}\n";
  BootMenu m = parse_grub2_cfg(in);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[1].title, "B");
  EXPECT_EQ(m.entries[1].kernel, "/vmlinuz-b");
  EXPECT_EQ(m.default_index, 1);
  CmdlineEdit e{test_map(), true, {}};
  std::string r = rewrite_grub2_cfg(in, e);
  EXPECT_NE(r.find("linux16 /vmlinuz-b root=UUID=11111111-2222-3333-4444-555555555555 console=ttyS0"),
            std::string::npos);
  EXPECT_EQ(rewrite_grub2_cfg(r, e), r);
}

// What Debian's grub-mkconfig writes: a top entry, then every kernel in a submenu, all with ids.
const char kDebianGrubCfg[] =
    "if [ \"${next_entry}\" ] ; then\n"
    "   set default=\"${next_entry}\"\n"
    "   set next_entry=\n"
    "else\n"
    "   set default=\"0\"\n"
    "fi\n"
    "function savedefault {\n"
    "  if [ -z \"${boot_once}\" ]; then\n"
    "    saved_entry=\"${chosen}\"\n"
    "  fi\n"
    "}\n"
    "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-abcd' {\n"
    "\tlinux\t/boot/vmlinuz-3.2.0-4-xen-amd64 root=/dev/xvda1 ro\n"
    "}\n"
    "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-abcd' {\n"
    "\tmenuentry 'Debian GNU/Linux, with Linux 3.2.0-4-xen-amd64' --class debian $menuentry_id_option "
    "'gnulinux-3.2.0-4-xen-amd64-advanced-abcd' {\n"
    "\t\tlinux\t/boot/vmlinuz-3.2.0-4-xen-amd64 root=/dev/xvda1 ro\n"
    "\t}\n"
    "\tmenuentry 'Debian GNU/Linux, with Linux 3.2.0-4-amd64' --class debian $menuentry_id_option "
    "'gnulinux-3.2.0-4-amd64-advanced-abcd' {\n"
    "\t\tlinux\t/boot/vmlinuz-3.2.0-4-amd64 root=/dev/xvda1 ro\n"
    "\t}\n"
    "}\n"
    "menuentry 'Other' --id other {\n"
    "\tlinux\t/boot/vmlinuz-other\n"
    "}\n";

TEST(Grub2, MenuPathsAndIds) {
  BootMenu m = parse_grub2_cfg(kDebianGrubCfg);
  ASSERT_EQ(m.entries.size(), 4u);
  EXPECT_EQ(m.default_value, "0");
  EXPECT_FALSE(m.saved_default);
  EXPECT_EQ(m.default_index, 0);
  EXPECT_EQ(m.entries[0].id, "gnulinux-simple-abcd");
  const BootEntry& e = m.entries[2];
  EXPECT_EQ(e.kernel, "/boot/vmlinuz-3.2.0-4-amd64");
  ASSERT_EQ(e.menu_path.size(), 2u);
  EXPECT_EQ(e.menu_path[0].index, 1);
  EXPECT_EQ(e.menu_path[0].title, "Advanced options for Debian GNU/Linux");
  EXPECT_EQ(e.menu_path[0].id, "gnulinux-advanced-abcd");
  EXPECT_EQ(e.menu_path[1].index, 1);
  EXPECT_EQ(e.menu_path[1].id, "gnulinux-3.2.0-4-amd64-advanced-abcd");
  EXPECT_EQ(m.entries[3].menu_path[0].index, 2);
  EXPECT_EQ(m.entries[3].id, "other");
}

TEST(Grub2, ResolvesDefaultsAsGrubDoes) {
  auto es = parse_grub2_cfg(kDebianGrubCfg).entries;
  EXPECT_EQ(resolve_grub2_default(es, "0"), 0);
  EXPECT_EQ(resolve_grub2_default(es, "1"), 1);  // a submenu boots its first entry
  EXPECT_EQ(resolve_grub2_default(es, "1>1"), 2);
  EXPECT_EQ(resolve_grub2_default(es, "2"), 3);
  EXPECT_EQ(resolve_grub2_default(es, "Other"), 3);
  EXPECT_EQ(resolve_grub2_default(es, "other"), 3);
  EXPECT_EQ(
      resolve_grub2_default(es, "Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 3.2.0-4-amd64"), 2);
  EXPECT_EQ(resolve_grub2_default(es, "gnulinux-advanced-abcd>gnulinux-3.2.0-4-amd64-advanced-abcd"), 2);
  EXPECT_EQ(resolve_grub2_default(es, "1>gnulinux-3.2.0-4-amd64-advanced-abcd"), 2);
  // A title inside a submenu is not a top-level title, and what names nothing is the first item, as in grub.
  EXPECT_EQ(resolve_grub2_default(es, "Debian GNU/Linux, with Linux 3.2.0-4-amd64"), 0);
  EXPECT_EQ(resolve_grub2_default(es, "9"), 0);
  EXPECT_EQ(resolve_grub2_default(es, ""), 0);
  EXPECT_EQ(resolve_grub2_default(es, "0>5"), 0);  // an entry ignores the rest of the path
  EXPECT_EQ(resolve_grub2_default({}, "0"), -1);
  EXPECT_EQ(grub2_default_path(es, 2), "gnulinux-advanced-abcd>gnulinux-3.2.0-4-amd64-advanced-abcd");
  EXPECT_EQ(grub2_default_path(es, 3), "other");
}

TEST(Grub2, DefaultPathFallsBackToTitlesThenNumbers) {
  std::string cfg =
      "submenu 'A>B' {\n menuentry 'x' {\n  linux /vmlinuz-1\n }\n}\nsubmenu 'S' --id=dup {\n menuentry 'y' {\n"
      "  linux /vmlinuz-2\n }\n}\nmenuentry '7 up' --id dup {\n linux /vmlinuz-3\n}\n";
  auto es = parse_grub2_cfg(cfg).entries;
  ASSERT_EQ(es.size(), 3u);
  EXPECT_EQ(grub2_default_path(es, 0), "A>>B>x");  // '>' in a title is doubled
  EXPECT_EQ(resolve_grub2_default(es, "A>>B>x"), 0);
  EXPECT_EQ(grub2_default_path(es, 1), "dup>y");
  // The id is taken by an earlier item and the title starts with a digit (grub reads a number): numbers.
  EXPECT_EQ(grub2_default_path(es, 2), "2");
}

TEST(Grub2, QuotedBracesAndCommentsDoNotNest) {
  std::string cfg =
      "menuentry 'a{' { # }\n linux /vmlinuz-a\n}\nsubmenu \"s}\" {\n menuentry b {\n  linux /vmlinuz-b\n }\n}\n";
  BootMenu m = parse_grub2_cfg(cfg);
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(m.entries[0].kernel, "/vmlinuz-a");
  ASSERT_EQ(m.entries[1].menu_path.size(), 2u);
  EXPECT_EQ(m.entries[1].menu_path[0].title, "s}");
  std::string out = set_grub2_default(cfg, "s}>b");
  EXPECT_EQ(parse_grub2_cfg(out).default_index, 1);
}

TEST(Grub2, SavedEntryDefault) {
  std::string cfg =
      "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"${saved_entry}\"\nfi\n"
      "menuentry 'a' {\n linux /vmlinuz-a\n}\n";
  BootMenu m = parse_grub2_cfg(cfg);
  EXPECT_TRUE(m.saved_default);
  EXPECT_EQ(m.default_value, "${saved_entry}");
  EXPECT_EQ(m.default_index, -1);
  // A saved default is grubenv's business: grub.cfg is left as it is.
  EXPECT_EQ(set_grub2_default(cfg, "1"), cfg);
}

TEST(Grub2, SetsTheLiteralDefault) {
  std::string out = set_grub2_default(kDebianGrubCfg, "gnulinux-advanced-abcd>gnulinux-3.2.0-4-amd64-advanced-abcd");
  std::string want = kDebianGrubCfg;
  want.replace(want.find("set default=\"0\""), 15,
               "set default=\"gnulinux-advanced-abcd>gnulinux-3.2.0-4-amd64-advanced-abcd\"");
  EXPECT_EQ(out, want);
  EXPECT_EQ(parse_grub2_cfg(out).default_index, 2);
  EXPECT_EQ(set_grub2_default(out, "gnulinux-advanced-abcd>gnulinux-3.2.0-4-amd64-advanced-abcd"), out);
  // No default line: one is added; quotes chosen so grub reads the value back.
  std::string bare = "menuentry 'a' {\n}\nmenuentry 'b$' {\n}\n";
  std::string b = set_grub2_default(bare, "b$");
  EXPECT_EQ(b, "set default='b$'\n" + bare);
  EXPECT_EQ(parse_grub2_cfg(b).default_index, 1);
  EXPECT_EQ(set_grub2_default(b, "b$"), b);
  // A `set default` inside a submenu is that submenu's, not the menu's.
  std::string sub = "set default=0 # top\nsubmenu 's' {\n set default=1\n menuentry 'x' {\n }\n}\n";
  EXPECT_EQ(set_grub2_default(sub, "0>0"),
            "set default=\"0>0\" # top\nsubmenu 's' {\n set default=1\n menuentry 'x' {\n }\n}\n");
  // grub also assigns without `set`: a hand-written `default=1` is the default, and is the line rewritten (a
  // `set default` added above it would be overridden by it, and the switch would do nothing).
  std::string plain = "default=1\ntimeout=5\nmenuentry 'a' {\n}\nmenuentry 'b' {\n}\n";
  EXPECT_EQ(parse_grub2_cfg(plain).default_value, "1");
  EXPECT_EQ(parse_grub2_cfg(plain).default_index, 1);
  std::string p = set_grub2_default(plain, "a");
  EXPECT_EQ(p, "default=\"a\"\ntimeout=5\nmenuentry 'a' {\n}\nmenuentry 'b' {\n}\n");
  EXPECT_EQ(parse_grub2_cfg(p).default_index, 0);
  EXPECT_EQ(set_grub2_default(p, "a"), p);
  EXPECT_FALSE(parse_grub2_cfg("default_kernel=1\nmenuentry 'a' {\n}\n").default_value == "1");
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

TEST(Bls, VersionsCompareAsRpmDoes) {
  EXPECT_LT(rpm_vercmp("4.18.0-80.el8.x86_64", "4.18.0-147.el8.x86_64"), 0);
  EXPECT_GT(rpm_vercmp("4.18.0-147.el8.x86_64", "4.18.0-80.el8.x86_64"), 0);
  EXPECT_EQ(rpm_vercmp("1.01", "1.1"), 0);
  EXPECT_LT(rpm_vercmp("1.0~rc1", "1.0"), 0);
  EXPECT_GT(rpm_vercmp("1.0a", "1.0"), 0);
  EXPECT_GT(rpm_vercmp("1.1", "1.a"), 0);  // numbers are newer than letters
  EXPECT_LT(rpm_vercmp("0-rescue-abc", "4.18.0"), 0);
  EXPECT_EQ(parse_bls_entry("title x\nversion 4.18.0-80.el8\n").version, "4.18.0-80.el8");
}

TEST(DefaultGrub, CmdlineAndUuidSwitch) {
  CmdlineEdit e{test_map(), true, {}};
  std::string in = "GRUB_CMDLINE_LINUX=\"console=hvc0 root=/dev/sda1\"\nGRUB_DISABLE_LINUX_UUID=true\n#GRUB_X=1\n";
  EXPECT_EQ(rewrite_default_grub(in, e, true),
            "GRUB_CMDLINE_LINUX=\"console=ttyS0 root=UUID=11111111-2222-3333-4444-555555555555\"\n"
            "GRUB_DISABLE_LINUX_UUID=false\n#GRUB_X=1\n");
  EXPECT_NE(rewrite_default_grub(in, e, false).find("GRUB_DISABLE_LINUX_UUID=true"), std::string::npos);
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

TEST(Ifcfg, StaticToDhcpDropsMac) {
  std::string in =
      "DEVICE=eth0\nBOOTPROTO=none\nIPADDR0=10.0.0.2\nPREFIX0=24\nGATEWAY=10.0.0.1\nHWADDR=aa:bb\nDNS1=1.1.1.1\n";
  std::string out = rewrite_ifcfg(in);
  EXPECT_EQ(out, "DEVICE=eth0\nBOOTPROTO=dhcp\nDNS1=1.1.1.1\n");
  EXPECT_EQ(rewrite_ifcfg(out), out);
  EXPECT_EQ(rewrite_ifcfg("DEVICE=eth0\nIPADDR=1.2.3.4"), "DEVICE=eth0\nBOOTPROTO=dhcp\n");
  EXPECT_EQ(rewrite_ifcfg("DEVICE=bond0\nBOOTPROTO=none\n"), "DEVICE=bond0\nBOOTPROTO=none\n");
}

TEST(Ifcfg, SuseStaticWithLladdr) {
  std::string in =
      "BOOTPROTO='static'\nBROADCAST=''\nIPADDR='192.168.1.10/24'\nIPADDR_2='10.0.0.1'\nPREFIXLEN_2='8'\n"
      "LLADDR='00:16:3e:00:00:01'\nNETMASK=''\nREMOTE_IPADDR=''\nSTARTMODE='auto'\n";
  NetSummary s = summarize_ifcfg(in);
  EXPECT_TRUE(s.is_static);
  EXPECT_EQ(s.macs, std::vector<std::string>{"00:16:3e:00:00:01"});
  std::string out = rewrite_ifcfg(in);
  EXPECT_EQ(out, "BOOTPROTO='dhcp'\nREMOTE_IPADDR=''\nSTARTMODE='auto'\n");
  EXPECT_EQ(rewrite_ifcfg(out), out);
  EXPECT_TRUE(summarize_ifcfg("BOOTPROTO='dhcp4'\n").dhcp);
  EXPECT_EQ(summarize_ifcfg("NAME=\"eth0\"\nDEVICE=ens3\n").names, std::vector<std::string>{"eth0"});
}

TEST(Interfaces, StanzasOnly) {
  std::string in =
      "auto lo\niface lo inet loopback\n    address 127.0.0.1\niface eth0 inet static\n  address 1.2.3.4\n"
      "  netmask 255.0.0.0\n  # keep\n  up route add x\niface eth1 inet dhcp\n  hwaddress ether 00:11\n";
  std::string out = rewrite_interfaces(in);
  EXPECT_EQ(out,
            "auto lo\niface lo inet loopback\n    address 127.0.0.1\niface eth0 inet dhcp\n  # keep\n"
            "  up route add x\niface eth1 inet dhcp\n");
  EXPECT_EQ(rewrite_interfaces(out), out);
}

TEST(Netplan, MatchMacStaticAndIdempotent) {
  std::string in =
      "network:\n  version: 2\n  ethernets:\n    eth0:\n      match:\n        macaddress: \"00:11\"\n"
      "      set-name: eth0\n      addresses:\n        - 10.0.0.5/24\n      gateway4: 10.0.0.1\n"
      "      nameservers:\n        addresses: [10.0.0.2]\n    eth1:\n      match:\n        name: en*\n"
      "        macaddress: 00:22\n      set-name: eth1\n      macaddress: 00:33\n      dhcp4: no\n";
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      nameservers:\n"
            "        addresses: [10.0.0.2]\n    eth1:\n      match:\n        name: en*\n      set-name: eth1\n"
            "      dhcp4: no\n");
  EXPECT_EQ(rewrite_netplan(out), out);
}

TEST(Netplan, FlowStyleInterface) {
  std::string in =
      "# flow style\nnetwork:\n  version: 2\n  ethernets:\n"
      "    eth0: {match: {macaddress: \"52:54:00:12:34:56\"}, set-name: eth0, addresses: [10.0.0.5/24], dhcp4: no, "
      "gateway4: 10.0.0.1}  # pinned\n"
      "    eth1: {dhcp4: true, match: {name: \"en*\", macaddress: 00:11:22:33:44:55}}\n";
  NetSummary s = summarize_netplan(in);
  EXPECT_EQ(s.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(s.names, std::vector<std::string>{"eth0"});
  EXPECT_EQ(s.macs, (std::vector<std::string>{"52:54:00:12:34:56", "00:11:22:33:44:55"}));
  EXPECT_TRUE(s.is_static);
  EXPECT_TRUE(s.dhcp);
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "# flow style\nnetwork:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}  # pinned\n"
            "    eth1: {dhcp4: true, match: {name: \"en*\"}}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  NetSummary after = summarize_netplan(out);
  EXPECT_FALSE(after.is_static);
  EXPECT_TRUE(after.macs.empty());
}

TEST(Netplan, FlowValuesInBlockInterfaces) {
  std::string in =
      "network:\n  ethernets:\n    eth0:\n      match: {macaddress: 00:11:22:33:44:55}\n      set-name: eth0\n"
      "      addresses: [192.168.1.10/24, \"fe80::1/64\"]\n      nameservers: {addresses: [1.1.1.1]}\n"
      "    eth1:\n      match: { name: en1 ,  macaddress: 'aa:bb:cc:dd:ee:ff' }\n      dhcp4: yes\n";
  NetSummary s = summarize_netplan(in);
  EXPECT_EQ(s.names, std::vector<std::string>{"eth0"});
  EXPECT_EQ(s.macs, (std::vector<std::string>{"00:11:22:33:44:55", "aa:bb:cc:dd:ee:ff"}));
  EXPECT_TRUE(s.is_static);
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      nameservers: {addresses: [1.1.1.1]}\n"
            "    eth1:\n      match: { name: en1 }\n      dhcp4: yes\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  EXPECT_FALSE(summarize_netplan(out).is_static);  // nameservers' addresses are not the interface's
}

TEST(Netplan, FlowEthernetsAndNetwork) {
  std::string in = "network: {version: 2, ethernets: {eth0: {addresses: [10.0.0.5/24], macaddress: \"00:11\"}}}\n";
  EXPECT_EQ(summarize_netplan(in).interfaces, std::vector<std::string>{"eth0"});
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out, "network: {version: 2, ethernets: {eth0: {dhcp4: true}}}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets: {eth0: {dhcp4, addresses: [1.2.3.4/8]}, eth1: {dhcp4: true}}\n";
  out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets: {eth0: {dhcp4: true}, eth1: {dhcp4: true}}\n");
  EXPECT_EQ(summarize_netplan(out).interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  // A flow collection over several lines is not understood: the file is left as it is.
  in = "network:\n  ethernets:\n    eth0: {addresses: [10.0.0.5/24],\n           dhcp4: no}\n";
  EXPECT_EQ(rewrite_netplan(in), in);
}

// A match on Xen's or VMware's NIC driver ("vif" is what udev reports for netfront) matches nothing on virtio_net:
// left in place, the interface would stay unconfigured on KVM. It goes like the MAC, with the set-name it carried.
TEST(Netplan, SourceNicDriverMatchGoesLikeTheMac) {
  std::string in = "network:\n  ethernets:\n    eth0:\n      match:\n        macaddress: \"52:54:00:aa:bb:cc\"\n"
                   "        driver: xen_netfront\n      set-name: eth0\n      dhcp4: true\n";
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets:\n    eth0: {match: {driver: vif}, set-name: eth0, dhcp4: true}\n";
  out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets:\n    eth0: {dhcp4: true}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets:\n    eth0:\n      match: {macaddress: \"00:11\", driver: vmxnet3}\n      set-name: eth0\n"
       "      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in), "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n");
  // Any other driver, or a name match, is the guest's choice and stays.
  in = "network:\n  ethernets:\n    eth0:\n      match:\n        driver: virtio_net\n      set-name: eth0\n"
       "      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in), in);
  in = "network:\n  ethernets:\n    eth0: {match: {name: \"e*\", driver: ixgbe}, dhcp4: true}\n";
  EXPECT_EQ(rewrite_netplan(in), in);
}

// VMware's ens192 does not exist on KVM (ens3, enp1s0): a lone interface keyed by such a name is matched by a glob.
TEST(Netplan, LonePredictableNameIsMatchedByAGlob) {
  // cloud-init's file: the MAC's line becomes the glob, set-name goes.
  std::string in = "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n            match:\n"
                   "                macaddress: 00:50:56:8f:12:34\n            set-name: ens192\n    version: 2\n";
  std::string out = rewrite_netplan(in, "en*");
  EXPECT_EQ(out, "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n            match:\n"
                 "                name: \"en*\"\n    version: 2\n");
  EXPECT_EQ(rewrite_netplan(out, "en*"), out);
  EXPECT_EQ(summarize_netplan(out).name_matched, std::vector<std::string>{"ens192"});
  EXPECT_TRUE(summarize_netplan(in).name_matched.empty());
  // Without the glob (more than one NIC, or names pinned to eth<N>) only the MAC goes.
  EXPECT_EQ(rewrite_netplan(in), "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n    version: 2\n");
  // No match at all: one is added, indented as the file is; static becomes DHCP as before.
  in = "network:\n  ethernets:\n    ens160:\n      addresses: [10.0.0.5/24]\n      gateway4: 10.0.0.1\n";
  out = rewrite_netplan(in, "en*");
  EXPECT_EQ(out, "network:\n  ethernets:\n    ens160:\n      match:\n        name: \"en*\"\n      dhcp4: true\n");
  EXPECT_EQ(rewrite_netplan(out, "en*"), out);
  // Left alone: two interfaces (one glob would take both configs), an eth name, a match the guest chose (a literal
  // name is reported, not guessed at), and the flow style.
  in = "network:\n  ethernets:\n    ens160:\n      dhcp4: true\n    ens192:\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  in = "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  in = "network:\n  ethernets:\n    ens192:\n      match:\n        name: ens192\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  EXPECT_TRUE(summarize_netplan(in).name_matched.empty());
  in = "network:\n  ethernets:\n    ens192: {dhcp4: true}\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  // Not a mapping under the key (a sequence at its indent, found by fuzzing; a value on its line): no match added.
  in = "network:\n  ethernets:\n    ens192:\n    - a\n      match:\n        macaddress: 00:11\n";
  EXPECT_EQ(summarize_netplan(rewrite_netplan(in, "en*")).interfaces, summarize_netplan(in).interfaces);
  in = "network:\n  ethernets:\n    ens192: x\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  EXPECT_EQ(summarize_netplan("network:\n  ethernets:\n    ens192: {match: {name: \"en*\"}}\n").name_matched,
            std::vector<std::string>{"ens192"});
  EXPECT_EQ(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"e[n]*\"}}}}\n").name_matched,
            std::vector<std::string>{"ens192"});
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: ens192}}}}\n").name_matched.empty());
  // A glob that misses ens3 or enp1s0 is as tied to the old layout as the name.
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"ens19*\"}}}}\n").name_matched.empty());
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"ens*\"}}}}\n").name_matched.empty());
  EXPECT_TRUE(summarize_netplan("network:\n  renderer: NetworkManager\n").nm_renderer);
  EXPECT_TRUE(summarize_netplan("network: {version: 2, renderer: \"NetworkManager\"}\n").nm_renderer);
  EXPECT_FALSE(summarize_netplan("network:\n  renderer: networkd\n").nm_renderer);
}

// The static gateway of an interface turned to DHCP goes with its address; other routes stay.
TEST(Routes, DefaultRoutesOfTheInterfaceAreCommentedOut) {
  // SUSE: DEST GATEWAY NETMASK IFACE.
  std::string in = "default 192.168.122.1 - -\n10.1.0.0/16 192.168.122.254 - eth0\n"
                   "default 10.9.9.1 - eth1\n0.0.0.0 10.0.0.1 0.0.0.0 eth0\n# default 1.1.1.1\n";
  std::string out = comment_out_default_routes(in, {"eth0"});
  EXPECT_EQ(out, "# default 192.168.122.1 - -\n10.1.0.0/16 192.168.122.254 - eth0\n"
                 "default 10.9.9.1 - eth1\n# 0.0.0.0 10.0.0.1 0.0.0.0 eth0\n# default 1.1.1.1\n");
  EXPECT_EQ(comment_out_default_routes(out, {"eth0"}), out);
  // RHEL route-eth0: ip route arguments.
  in = "default via 10.0.0.1 dev eth0\n10.2.0.0/16 via 10.0.0.254\n0.0.0.0/0 via 10.0.0.1\ndefault via 10.5.0.1 dev eth1\n";
  EXPECT_EQ(comment_out_default_routes(in, {"eth0"}), "# default via 10.0.0.1 dev eth0\n10.2.0.0/16 via 10.0.0.254\n"
                                                    "# 0.0.0.0/0 via 10.0.0.1\ndefault via 10.5.0.1 dev eth1\n");
  // A host route to 0.0.0.0 is not a default route.
  EXPECT_EQ(comment_out_default_routes("0.0.0.0 10.0.0.1 255.255.255.255 -\n", {"eth0"}),
            "0.0.0.0 10.0.0.1 255.255.255.255 -\n");
}

TEST(NmKeyfile, ManualToAuto) {
  std::string in =
      "[ethernet]\nmac-address=00:11\nmtu=1500\n[ipv4]\naddress1=1.2.3.4/24,1.2.3.1\nmethod=manual\n"
      "[ipv6]\naddress1=fe80::1/64\nmethod=manual\n";
  std::string out = rewrite_nm_keyfile(in);
  EXPECT_EQ(out, "[ethernet]\nmtu=1500\n[ipv4]\nmethod=auto\n[ipv6]\naddress1=fe80::1/64\nmethod=manual\n");
  EXPECT_EQ(rewrite_nm_keyfile(out), out);
}

TEST(Consoles, InittabAndSecuretty) {
  std::string in = "co:2345:respawn:/sbin/agetty xvc0 9600 vt100-nav\n# xvc0 comment\nx:5:respawn:/bin/xvc0\n";
  EXPECT_EQ(rewrite_inittab(in),
            "co:2345:respawn:/sbin/agetty ttyS0 9600 vt100-nav\n# xvc0 comment\nx:5:respawn:/bin/xvc0\n");
  EXPECT_EQ(inittab_getty_ttys(in), std::vector<std::string>{"xvc0"});
  EXPECT_EQ(rewrite_securetty("tty1\nxvc0"), "tty1\nxvc0\nttyS0\n");
  EXPECT_EQ(rewrite_securetty("ttyS0\n"), "ttyS0\n");
}

TEST(Misc, DeviceNamesConsolesDatasources) {
  EXPECT_EQ(find_device_names("root=/dev/xvda1 /dev/vda1 /dev/sdb /dev/mapper/x"),
            (std::vector<std::string>{"/dev/xvda1", "/dev/sdb"}));
  EXPECT_EQ(find_consoles("a console=tty0 \"console=ttyS0,115200\""),
            (std::vector<std::string>{"tty0", "ttyS0,115200"}));
  EXPECT_EQ(cloud_init_datasources("datasource_list: [ 'NoCloud', Ec2 ]\n"),
            (std::vector<std::string>{"NoCloud", "Ec2"}));
  EXPECT_EQ(shell_var("A=1\nexport B=\"x y\"\nA=2 # c\n", "A"), "2");
  EXPECT_EQ(shell_var("A=1\nexport B=\"x y\"\n", "B"), "x y");
  EXPECT_EQ(rewrite_persistent_net_rules("SUBSYSTEM==\"net\"\n"), "");
}

// Every rewriter is total: arbitrary bytes never crash it, and its output is a fixed point.
TEST(Rewriters, TotalOnArbitraryInput) {
  std::mt19937 rng(1234);
  const char alphabet[] = "ab=: \t\n\r#-[]{}\"'/devxvda1sdhroot=console=hvc0xvc0matchmacaddress:iface static0";
  CmdlineEdit e{test_map(), true, {"net.ifnames=0", "biosdevname=0"}};
  for (int n = 0; n < 3000; ++n) {
    std::string s(rng() % 200, ' ');
    for (auto& c : s) c = rng() % 8 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % (sizeof alphabet - 1)];
    std::vector<std::function<std::string(std::string_view)>> fs = {
        [&](std::string_view t) { return rewrite_fstab(t, e.map); },
        [&](std::string_view t) { return rewrite_crypttab(t, e.map); },
        [&](std::string_view t) { return rewrite_grub_legacy(t, e); },
        [&](std::string_view t) { return rewrite_grub2_cfg(t, e); },
        [&](std::string_view t) { return rewrite_default_grub(t, e, true); },
        [&](std::string_view t) { return rewrite_bls_entry(t, e); },
        [&](std::string_view t) { return rewrite_grubenv(t, e); },
        [&](std::string_view t) { return rewrite_syslinux(t, e); },
        [](std::string_view t) { return rewrite_ifcfg(t); },
        [](std::string_view t) { return rewrite_interfaces(t); },
        [](std::string_view t) { return rewrite_netplan(t); },
        [](std::string_view t) { return rewrite_nm_keyfile(t); },
        [](std::string_view t) { return rewrite_inittab(t); },
        [](std::string_view t) { return rewrite_securetty(t); },
        [](std::string_view t) { return set_grub2_default(t, "a>b"); },
        [](std::string_view t) { return set_default_grub_default(t, "a>b"); },
        [](std::string_view t) { return set_grubenv_var(t, "saved_entry", "a>b").value_or(std::string(t)); },
    };
    for (size_t k = 0; k < fs.size(); ++k) {
      std::string once = fs[k](s);
      EXPECT_EQ(fs[k](once), once) << "rewriter " << k << " is not idempotent on: " << testing::PrintToString(s);
    }
    (void)parse_grub_legacy(s);
    (void)parse_grub2_cfg(s);
    (void)parse_syslinux(s);
    (void)parse_bls_entry(s);
    (void)summarize_netplan(s);
    (void)parse_device_name(s);
  }
}

}  // namespace
}  // namespace vdkit::fixups
