// modules.dep parsing and closure: load order, RHEL 5's absolute paths, and the hostile lists a guest may hold.
#include "fixups/initramfs/modules.h"

#include <gtest/gtest.h>

namespace vdkit::fixups {
namespace {

TEST(ModulesDep, NamesAndSafePaths) {
  EXPECT_EQ(module_name("kernel/drivers/virtio/virtio-pci.ko.xz"), "virtio_pci");
  EXPECT_EQ(module_name("virtio_blk.ko.zst"), "virtio_blk");
  EXPECT_EQ(module_name("a/b.txt"), "");
  EXPECT_EQ(module_name(".ko"), "");
  EXPECT_TRUE(safe_module_path("kernel/drivers/block/virtio_blk.ko"));
  for (const char* bad : {"../virtio.ko", "kernel/../../etc/x.ko", "/lib/x.ko", "a//b.ko", "a/./b.ko", "a b.ko",
                          "a\\b.ko", "kernel/x.so", "", "a/\x01.ko"})
    EXPECT_FALSE(safe_module_path(bad)) << bad;
  EXPECT_FALSE(safe_module_path(std::string(5000, 'a') + ".ko"));
}

TEST(ModulesDep, ClosureInLoadOrder) {
  auto d = ModulesDep::parse(
      "kernel/v/virtio_pci.ko: kernel/v/virtio_ring.ko kernel/v/virtio.ko\n"
      "kernel/v/virtio_ring.ko: kernel/v/virtio.ko\n"
      "kernel/v/virtio.ko:\n"
      "kernel/b/virtio_blk.ko: kernel/v/virtio_ring.ko kernel/v/virtio.ko\n",
      "6.1");
  ASSERT_TRUE(d.ok()) << d.status().message();
  auto c = d->closure({"virtio_pci", "virtio_blk"});
  ASSERT_TRUE(c.ok());
  std::vector<std::string> names;
  for (const auto& m : *c) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"virtio", "virtio_ring", "virtio_pci", "virtio_blk"}));
  // Already in the image: left out, and what it needs is still followed for the rest.
  auto s = d->closure({"virtio_blk"}, {"virtio"});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].path, "kernel/v/virtio_ring.ko");
  EXPECT_FALSE(d->closure({"nope"}).ok());
}

TEST(ModulesDep, AbsolutePathsOfOldDepmod) {
  auto d = ModulesDep::parse("/lib/modules/2.6.18/kernel/b/virtio_blk.ko: /lib/modules/2.6.18/kernel/v/virtio.ko\n"
                             "/lib/modules/2.6.18/kernel/v/virtio.ko:\n",
                             "2.6.18");
  ASSERT_TRUE(d.ok()) << d.status().message();
  auto c = d->closure({"virtio_blk"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].path, "kernel/v/virtio.ko");
  // Another kernel's absolute path stays absolute, and so is refused.
  EXPECT_FALSE(ModulesDep::parse("/lib/modules/9.9/kernel/x.ko:\n", "2.6.18").ok());
}

TEST(ModulesDep, HostileLists) {
  // A path leaving the module folder, in a module or a dependency.
  auto up = ModulesDep::parse("kernel/x.ko: ../../../../etc/shadow.ko\n", "6.1");
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("line 1"), std::string::npos) << up.status().message();
  EXPECT_FALSE(ModulesDep::parse("../x.ko:\n", "6.1").ok());
  // Too large, too many lines, too many dependencies: named limits, checked before the work.
  EXPECT_EQ(ModulesDep::parse(std::string(kMaxModulesDepBytes + 1, '#'), "6.1").status().code(), EFBIG);
  EXPECT_FALSE(ModulesDep::parse(std::string(kMaxModulesDepLines + 1, '\n'), "6.1").ok());
  std::string many = "kernel/x.ko:";
  for (size_t i = 0; i <= kMaxModuleDeps; ++i) many += " kernel/d" + std::to_string(i) + ".ko";
  EXPECT_FALSE(ModulesDep::parse(many + "\n", "6.1").ok());
  // A cycle is an error, not a hang.
  auto cyc = ModulesDep::parse("kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n", "6.1");
  ASSERT_TRUE(cyc.ok());
  EXPECT_FALSE(cyc->closure({"a"}).ok());
  // A chain longer than what one closure may add.
  std::string chain;
  for (size_t i = 0; i < kMaxModulesAdded + 5; ++i)
    chain += "kernel/m" + std::to_string(i) + ".ko: kernel/m" + std::to_string(i + 1) + ".ko\n";
  chain += "kernel/m" + std::to_string(kMaxModulesAdded + 5) + ".ko:\n";
  auto ch = ModulesDep::parse(chain, "6.1");
  ASSERT_TRUE(ch.ok());
  EXPECT_FALSE(ch->closure({"m0"}).ok());
}

}  // namespace
}  // namespace vdkit::fixups
