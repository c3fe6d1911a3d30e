// list_initramfs on archives made by cpio and the real compressors, stacked behind early-microcode cpio; corrupt input.
#include "fixups/initramfs/reader.h"
#include "fixups/initramfs/cpio_writer.h"

#include <gtest/gtest.h>

#include "blockcore/testing/test_shell.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace vdkit::fixups {
namespace {

std::string run(const std::string& cmd) {
  int rc = -1;
  std::string out = test::output_of(cmd, &rc);
  return rc == 0 ? out : std::string("FAILED");
}

class InitramfsTest : public testing::Test {
 protected:
  void SetUp() override {
    if (system("command -v cpio >/dev/null && command -v xz >/dev/null") != 0) GTEST_SKIP() << "cpio/xz missing";
    char d[] = "/tmp/vdkit-initramfs-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    ASSERT_EQ(system(("mkdir -p " + dir_ + "/main/lib/modules/5.4/kernel/drivers/block " + dir_ +
                      "/mc/kernel/x86/microcode && echo x > " + dir_ +
                      "/main/lib/modules/5.4/kernel/drivers/block/virtio_blk.ko.xz && echo i > " + dir_ +
                      "/main/init && echo m > " + dir_ + "/mc/kernel/x86/microcode/GenuineIntel.bin")
                         .c_str()),
              0);
  }
  void TearDown() override {
    if (!dir_.empty()) (void)system(("rm -rf " + dir_).c_str());
  }
  std::string cpio(const std::string& sub) {
    return run("cd " + dir_ + "/" + sub + " && find . | LC_ALL=C sort | cpio -o -H newc --quiet");
  }
  std::string dir_;
};

bool has(const std::vector<std::string>& v, const std::string& suffix) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  });
}

TEST_F(InitramfsTest, EveryCompressorAndMicrocodeInFront) {
  for (const char* comp : {"cat", "gzip -n", "xz --check=crc32", "zstd -q", "lz4 -l -q"}) {
    std::string c = comp;
    if (system(("command -v " + c.substr(0, c.find(' ')) + " >/dev/null").c_str()) != 0) continue;
    std::string main = run("cd " + dir_ + "/main && find . | LC_ALL=C sort | cpio -o -H newc --quiet | " + c);
    ASSERT_NE(main, "FAILED") << comp;
    auto plain = list_initramfs(main);
    ASSERT_TRUE(plain.ok()) << comp << ": " << plain.status().message();
    EXPECT_TRUE(has(*plain, "virtio_blk.ko.xz")) << comp;
    std::string stacked = cpio("mc") + std::string(512, '\0') + main;
    auto both = list_initramfs(stacked);
    ASSERT_TRUE(both.ok()) << comp << ": " << both.status().message();
    EXPECT_TRUE(has(*both, "GenuineIntel.bin")) << comp;
    EXPECT_TRUE(has(*both, "virtio_blk.ko.xz")) << comp;
  }
}

TEST_F(InitramfsTest, ArchivesAfterACompressedOneAreFound) {
  CpioWriter w;
  ASSERT_TRUE(w.add_file("etc/cmdline.d/90-vdkit-virtio.conf", "rd.driver.pre=virtio_blk\n").ok());
  std::string seg = w.finish();
  for (const char* comp : {"gzip -n", "xz --check=crc32", "zstd -q", "lz4 -l -q"}) {
    std::string c = comp;
    if (system(("command -v " + c.substr(0, c.find(' ')) + " >/dev/null").c_str()) != 0) continue;
    std::string main = run("cd " + dir_ + "/main && find . | LC_ALL=C sort | cpio -o -H newc --quiet | " + c);
    std::string image = cpio("mc") + main + std::string((4 - main.size() % 4) % 4, '\0') + seg;
    auto r = read_initramfs(image);
    ASSERT_TRUE(r.ok()) << comp << ": " << r.status().message();
    bool lz4 = c.rfind("lz4", 0) == 0;
    EXPECT_EQ(has(*list_initramfs(image), "90-vdkit-virtio.conf"), !lz4) << comp;
    ASSERT_GE(r->segments.size(), 2u);
    EXPECT_EQ(r->segments[1].delimited, !lz4) << comp;
    if (!lz4) {
      ASSERT_EQ(r->segments.size(), 3u) << comp;
      EXPECT_EQ(r->segments[2].offset % 4, 0u);
      EXPECT_EQ(r->segments[2].compression, "none");
    }
  }
  // Junk after the archives: the archives are still read, and the junk is an undelimited last segment.
  std::string gz = run("cd " + dir_ + "/main && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n");
  auto j = read_initramfs(gz + "JUNK AFTER THE ARCHIVE");
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_FALSE(j->segments.back().delimited);
  EXPECT_TRUE(has(*list_initramfs(gz + "JUNK"), "virtio_blk.ko.xz"));
}

TEST_F(InitramfsTest, CorruptInputIsAnError) {
  std::string mc = cpio("mc");
  // A name size pointing past the end.
  std::string bad = mc;
  bad.replace(94, 8, "7FFFFFFF");
  auto r = list_initramfs(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("offset 0"), std::string::npos) << r.status().message();
  // Truncated in the middle of the first archive.
  EXPECT_FALSE(list_initramfs(mc.substr(0, mc.size() / 2)).ok());
  EXPECT_FALSE(list_initramfs("not an archive at all").ok());
  EXPECT_FALSE(list_initramfs("").ok());
}

}  // namespace
}  // namespace vdkit::fixups
