// The driver segment on images made by cpio and the real compressors, shaped as initramfs-tools, dracut and
// RHEL 5's mkinitrd make them; checked by listing every segment with cpio -t (and lsinitramfs for the first), and
// by unpacking the whole stack as the kernel would (each archive over the last) and reading the result.
#include "fixups/initramfs/segment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "blockcore/testing/test_shell.h"
#include "fixups/initramfs/cpio_writer.h"
#include "fixups/initramfs/depmod.h"

namespace vdkit::fixups {
namespace {

constexpr const char* kKver = "6.1.0-9-amd64";

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// modules.dep of a Debian 12 kernel for the virtio and SCSI modules (the real lines, trimmed to these).
constexpr const char* kModulesDep =
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n"
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko:\n"
    "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko "
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/virtio/virtio_ring.ko:\n"
    "kernel/drivers/virtio/virtio.ko:\n"
    "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/scsi/virtio_scsi.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/virtio/virtio_ring.ko "
    "kernel/drivers/virtio/virtio.ko\n"
    "kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko\n"
    "kernel/drivers/scsi/scsi_common.ko:\n"
    "kernel/drivers/block/xen-blkfront.ko:\n";

class SegmentTest : public testing::Test {
 protected:
  void SetUp() override {
    if (test::run("command -v cpio && command -v zstd && command -v gzip") != 0) GTEST_SKIP() << "cpio/zstd missing";
    char d[] = "/tmp/vdkit-segment-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
  }
  void TearDown() override {
    if (!dir_.empty() && !getenv("VDKIT_KEEP_TEST_DIR")) test::run("rm -rf " + dir_);
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run("set -e; cd " + dir_ + " && " + cmd, &out), 0) << cmd << "\n" << out;
  }
  // The guest's modules: each file holds its own name, so the unpacked result shows which file landed where.
  GuestKernelModules guest() {
    auto dep = ModulesDep::parse(kModulesDep, kKver);
    EXPECT_TRUE(dep.ok());
    return {kKver, std::move(*dep), [](const std::string& rel) -> Result<std::string> {
              if (!safe_module_path(rel)) return Status::Error(ENOENT, rel);
              return "module " + rel + "\n";
            }};
  }
  // A depmod stand-in that records its input, unless the host's kmod is asked for.
  DepmodFn depmod(bool real) {
    if (real) return [](const std::string& k, const std::map<std::string, std::string>& f) { return run_depmod(k, f); };
    return [this](const std::string&, const std::map<std::string, std::string>& f)
               -> Result<std::map<std::string, std::string>> {
      staged_.clear();
      for (const auto& [rel, data] : f) staged_.push_back(rel);
      return std::map<std::string, std::string>{{"modules.dep", "stub index\n"}};
    };
  }
  // An initramfs-tools image of a merged-/usr Debian guest: lib -> usr/lib, xen-blkfront only, zstd, behind an
  // uncompressed early cpio, as update-initramfs writes it.
  std::string initramfs_tools_image() {
    sh("mkdir -p it/usr/lib/modules/" + std::string(kKver) +
       "/kernel/drivers/block it/conf it/scripts it/usr/bin early/kernel/x86/microcode && "
       "ln -s usr/lib it/lib && ln -s usr/bin it/bin && echo '#!/bin/sh' > it/init && "
       "echo MODULES=list > it/conf/initramfs.conf && echo xen-blkfront > it/conf/modules && "
       "echo fn > it/scripts/functions && echo blk > it/usr/lib/modules/" + kKver +
       "/kernel/drivers/block/xen-blkfront.ko && echo 'kernel/drivers/block/xen-blkfront.ko:' > "
       "it/usr/lib/modules/" + kKver + "/modules.dep && echo ucode > early/kernel/x86/microcode/AuthenticAMD.bin && "
       "(cd early && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > image && "
       "(cd it && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -c) >> image");
    return slurp(dir_ + "/image");
  }
  // Unpacks every segment of `image` in order into dir_/NAME, each over the last, as the kernel does; lists each
  // segment with cpio -t into dir_/NAME.lists.
  void unpack_all(const std::string& image, const std::string& name) {
    std::ofstream(dir_ + "/" + name + ".img", std::ios::binary) << image;
    auto c = read_initramfs(image);
    ASSERT_TRUE(c.ok()) << c.status().message();
    sh("mkdir -p " + name + " && : > " + name + ".lists");
    for (size_t i = 0; i < c->segments.size(); ++i) {
      const auto& s = c->segments[i];
      std::string cat = s.compression == "none" ? "cat" : s.compression == "zstd" ? "zstd -dc" : "gzip -dc";
      sh("dd if=" + name + ".img bs=1 skip=" + std::to_string(s.offset) + " count=" + std::to_string(s.data_length) +
         " status=none | " + cat + " > " + name + ".seg" + std::to_string(i) + " && cpio -t --quiet < " + name +
         ".seg" + std::to_string(i) + " >> " + name + ".lists && (cd " + name +
         " && cpio -idmu --quiet --no-absolute-filenames < ../" + name + ".seg" + std::to_string(i) + ")");
    }
  }
  std::string dir_;
  std::vector<std::string> staged_;
};

TEST_F(SegmentTest, InitramfsToolsMergedUsr) {
  std::string image = initramfs_tools_image();
  auto seg = build_driver_segment(image, {"virtio_pci", "virtio_blk"}, guest(), depmod(false));
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  EXPECT_EQ(seg->flavour, InitramfsFlavour::kInitramfsTools);
  std::vector<std::string> names;
  for (const auto& m : seg->modules) names.push_back(m.name);
  // Every module after what it depends on.
  auto pos = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) - names.begin(); };
  ASSERT_EQ(names.size(), 6u) << testing::PrintToString(names);
  EXPECT_LT(pos("virtio"), pos("virtio_pci"));
  EXPECT_LT(pos("virtio_ring"), pos("virtio_blk"));
  EXPECT_LT(pos("virtio_pci_modern_dev"), pos("virtio_pci"));
  // depmod saw the old modules and the new ones together.
  EXPECT_NE(std::find(staged_.begin(), staged_.end(), "kernel/drivers/block/xen-blkfront.ko"), staged_.end());
  EXPECT_NE(std::find(staged_.begin(), staged_.end(), "kernel/drivers/block/virtio_blk.ko"), staged_.end());
  // No entry for lib or usr/lib: the link must survive. Only the new folder drivers/virtio gets one.
  for (const auto& f : seg->files) {
    EXPECT_NE(f, "lib/");
    EXPECT_EQ(f.rfind("lib/", 0), std::string::npos) << f;
  }
  std::string fixed = image + seg->padding + seg->segment;
  EXPECT_EQ((image.size() + seg->padding.size()) % 4, 0u);
  unpack_all(fixed, "u");
  std::string lists = slurp(dir_ + "/u.lists");
  EXPECT_NE(lists.find("usr/lib/modules/" + std::string(kKver) + "/kernel/drivers/block/virtio_blk.ko"),
            std::string::npos)
      << lists;
  // The unpacked tree: lib is still the link, the modules are under it, conf/modules has old and new lines.
  sh("test -L u/lib && test -f u/lib/modules/" + std::string(kKver) + "/kernel/drivers/virtio/virtio_pci.ko");
  EXPECT_EQ(slurp(dir_ + "/u/conf/modules"),
            "xen-blkfront\n# Added by vdkit: the virtio drivers KVM's disk needs\nvirtio_pci\nvirtio_blk\n");
  EXPECT_EQ(slurp(dir_ + "/u/usr/lib/modules/" + std::string(kKver) + "/modules.dep"), "stub index\n");
  // lsinitramfs stops at data after a compressed archive (it hands the rest to one zstd), so it is the peer for the
  // image as update-initramfs wrote it: our reader lists exactly what it lists there.
  if (test::run("command -v lsinitramfs") == 0) {
    std::string ls = test::output_of("lsinitramfs " + dir_ + "/image 2>/dev/null | grep -vx . | LC_ALL=C sort");
    auto ours = list_initramfs(image);
    ASSERT_TRUE(ours.ok());
    std::sort(ours->begin(), ours->end());
    std::string joined;
    for (const auto& n : *ours) joined += n + "\n";
    EXPECT_EQ(joined, ls);
    EXPECT_NE(test::run("lsinitramfs " + dir_ + "/u.img"), 0) << "lsinitramfs now reads appended archives";
  }
  // Our reader sees the new segment, and a second build finds nothing to add.
  auto again = build_driver_segment(fixed, {"virtio_pci", "virtio_blk"}, guest(), depmod(false));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->segment.empty());
  EXPECT_TRUE(again->drivers.empty());
}

TEST_F(SegmentTest, RealDepmodIndexesOldAndNew) {
  if (find_depmod().empty()) GTEST_SKIP() << "kmod's depmod is not installed";
  std::string image = initramfs_tools_image();
  auto seg = build_driver_segment(image, {"virtio_scsi"}, guest(), depmod(true));
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  std::vector<std::string> names;
  for (const auto& m : seg->modules) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"virtio", "virtio_ring", "scsi_common", "scsi_mod", "virtio_scsi"}));
  unpack_all(image + seg->padding + seg->segment, "u");
  std::string dep = slurp(dir_ + "/u/usr/lib/modules/" + std::string(kKver) + "/modules.dep");
  EXPECT_NE(dep.find("kernel/drivers/block/xen-blkfront.ko:"), std::string::npos) << dep;
  EXPECT_NE(dep.find("kernel/drivers/scsi/virtio_scsi.ko:"), std::string::npos) << dep;
  sh("test -s u/usr/lib/modules/" + std::string(kKver) + "/modules.dep.bin");
}

TEST_F(SegmentTest, DracutGetsCmdlineConf) {
  sh("mkdir -p d/usr/lib/dracut d/usr/lib/modules/" + std::string(kKver) + " d/etc && ln -s usr/lib d/lib && "
     "echo dracut-059 > d/usr/lib/dracut/dracut-059 && echo '#!/bin/sh' > d/init && "
     "(cd d && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) > dracut.img");
  std::string image = slurp(dir_ + "/dracut.img");
  auto seg = build_driver_segment(image, {"virtio_pci", "virtio_blk"}, guest(), depmod(false));
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  EXPECT_EQ(seg->flavour, InitramfsFlavour::kDracut);
  unpack_all(image + seg->padding + seg->segment, "u");
  EXPECT_EQ(slurp(dir_ + "/u/etc/cmdline.d/90-vdkit-virtio.conf"), "rd.driver.pre=virtio_pci,virtio_blk\n");
  sh("test -L u/lib && test -f u/usr/lib/modules/" + std::string(kKver) + "/kernel/drivers/block/virtio_blk.ko");
  // Without a version file it is RHEL 6's dracut, which takes the drivers from the command line.
  sh("rm d/usr/lib/dracut/dracut-059 && echo x > d/usr/lib/dracut/dracut-lib.sh && "
     "(cd d && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) > old.img");
  auto old = build_driver_segment(slurp(dir_ + "/old.img"), {"virtio_pci", "virtio_blk"}, guest(), depmod(false));
  ASSERT_TRUE(old.ok()) << old.status().message();
  EXPECT_EQ(old->flavour, InitramfsFlavour::kDracutOld);
  EXPECT_EQ(old->cmdline_drivers, (std::vector<std::string>{"virtio_pci", "virtio_blk"}));
}

TEST_F(SegmentTest, NashInitGetsInsmodsBeforeMkrootdev) {
  // RHEL 5 mkinitrd's shape, from tests/tools/make-nash-initrd: a nash /init, every module flat in /lib, gzip.
  sh("echo xenblk > xenblk.ko && " + std::string(VDKIT_SOURCE_DIR) +
     "/tests/tools/make-nash-initrd nash.img /dev/xvda1 xenblk.ko");
  std::string image = slurp(dir_ + "/nash.img");
  std::string dep = "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio.ko:\n"
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio_ring.ko:\n"
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio_pci.ko: "
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio_ring.ko "
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio.ko\n"
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/block/virtio_blk.ko: "
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio_ring.ko "
                    "/lib/modules/2.6.18-419.el5/kernel/drivers/virtio/virtio.ko\n";
  auto parsed = ModulesDep::parse(dep, "2.6.18-419.el5");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  GuestKernelModules g{"2.6.18-419.el5", std::move(*parsed),
                       [](const std::string& rel) -> Result<std::string> { return "module " + rel + "\n"; }};
  bool ran = false;
  auto seg = build_driver_segment(image, {"virtio_pci", "virtio_blk"}, g,
                                  [&](const std::string&, const std::map<std::string, std::string>&)
                                      -> Result<std::map<std::string, std::string>> {
                                    ran = true;  // nash has no module index
                                    return Status::Error(EINVAL, "not expected");
                                  });
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  EXPECT_FALSE(ran);
  EXPECT_EQ(seg->flavour, InitramfsFlavour::kNash);
  unpack_all(image + seg->padding + seg->segment, "u");
  std::string init = slurp(dir_ + "/u/init");
  size_t virtio = init.find("insmod /lib/virtio.ko\n"), ring = init.find("insmod /lib/virtio_ring.ko\n"),
         pci = init.find("insmod /lib/virtio_pci.ko\n"), blk = init.find("insmod /lib/virtio_blk.ko\n"),
         root = init.find("mkrootdev");
  ASSERT_NE(blk, std::string::npos) << init;
  EXPECT_LT(virtio, pci);
  EXPECT_LT(ring, pci);
  EXPECT_LT(pci, blk);
  EXPECT_LT(blk, root);
  size_t xen = init.find("insmod /lib/xenblk.ko");
  ASSERT_NE(xen, std::string::npos);
  // Where mkinitrd puts its own: after the last insmod, before "stabilized", mkblkdevs and "Creating root device".
  EXPECT_LT(xen, virtio);
  EXPECT_LT(blk, init.find("stabilized"));
  EXPECT_LT(blk, init.find("echo Creating root device."));
  sh("test -x u/init && test -f u/lib/virtio_blk.ko && test -f u/lib/xenblk.ko");
}

TEST_F(SegmentTest, RefusesWhatItCannotDoRight) {
  // Unknown flavour: reported, nothing built.
  sh("mkdir -p x/etc && echo hi > x/etc/motd && (cd x && find . | cpio -o -H newc --quiet | gzip -n) > x.img");
  auto unknown = build_driver_segment(slurp(dir_ + "/x.img"), {"virtio_blk"}, guest(), depmod(false));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("does not recognise"), std::string::npos);
  // An lz4 main archive: its end is unknown, so nothing may follow it.
  if (test::run("command -v lz4") == 0) {
    sh("mkdir -p l/conf l/scripts && echo a > l/conf/initramfs.conf && echo b > l/scripts/functions && "
       "(cd l && find . | cpio -o -H newc --quiet | lz4 -l -q -c) > l.img");
    auto lz = build_driver_segment(slurp(dir_ + "/l.img"), {"virtio_blk"}, guest(), depmod(false));
    ASSERT_FALSE(lz.ok());
    EXPECT_NE(lz.status().message().find("whose end vdkit cannot find"), std::string::npos)
        << lz.status().message();
  }
  // A guest module list naming a module the guest does not have.
  initramfs_tools_image();
  auto missing = build_driver_segment(slurp(dir_ + "/image"), {"virtio_net_nonexistent"}, guest(), depmod(false));
  EXPECT_FALSE(missing.ok());
}

TEST_F(SegmentTest, LinksInTheImageCannotLeadOutside) {
  // An image whose lib/modules is a link out of the tree: resolution stays inside the image's root.
  sh("mkdir -p h/conf h/scripts h/usr && echo a > h/conf/initramfs.conf && echo b > h/scripts/functions && "
     "ln -s ../../../../../../tmp/evil h/lib && "
     "(cd h && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > h.img");
  auto c = read_initramfs(slurp(dir_ + "/h.img"), [](std::string_view, uint32_t, uint64_t) { return true; });
  ASSERT_TRUE(c.ok());
  auto r = resolve_image_path(*c, "lib/modules/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "tmp/evil/modules/x");
  auto seg = build_driver_segment(slurp(dir_ + "/h.img"), {"virtio_blk"}, guest(), depmod(false));
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  for (const auto& f : seg->files) EXPECT_EQ(f.find(".."), std::string::npos) << f;
}

TEST(CpioWriter, ReadByCpioAndByOurReader) {
  CpioWriter w;
  ASSERT_TRUE(w.add_dir("a").ok());
  ASSERT_TRUE(w.add_file("a/b.txt", "hello\n").ok());
  ASSERT_TRUE(w.add_file("c", std::string(5, '\0'), 0755).ok());
  EXPECT_FALSE(w.add_file("/abs", "x").ok());
  std::string a = w.finish();
  EXPECT_EQ(a.size() % 4, 0u);
  auto c = read_initramfs(a, [](std::string_view, uint32_t, uint64_t) { return true; });
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->entries.size(), 3u);
  EXPECT_EQ(c->entries[1].data, "hello\n");
  EXPECT_EQ(c->entries[2].mode & 07777, 0755u);
  char d[] = "/tmp/vdkit-cpio-test.XXXXXX";
  ASSERT_NE(mkdtemp(d), nullptr);
  std::string dir = d;
  std::ofstream(dir + "/a.cpio", std::ios::binary) << a;
  EXPECT_EQ(test::output_of("cpio -t --quiet < " + dir + "/a.cpio"), "a\na/b.txt\nc\n");
  EXPECT_EQ(test::run("cd " + dir + " && cpio -idm --quiet < a.cpio && test \"$(cat a/b.txt)\" = hello"), 0);
  test::run("rm -rf " + dir);
}

}  // namespace
}  // namespace vdkit::fixups
