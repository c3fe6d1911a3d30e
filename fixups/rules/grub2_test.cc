// Unit tests for grub2 grub.cfg: entries, submenus, ids, and defaults resolved and set as grub reads them.
#include "fixups/rules/grub2.h"

#include <gtest/gtest.h>

#include <string>

#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

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

}  // namespace
}  // namespace vdkit::fixups
