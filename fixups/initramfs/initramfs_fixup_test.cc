// The initramfs fixup through the whole fixup pass on a folder guest with a real cpio initramfs: the plan, apply,
// --backup, a second run, every interrupted prefix, --no-initramfs, too little room on /boot, and hostile guests
// (a /lib/modules link out of the guest, a module path with "..", a huge modules.dep).
#include "fixups/initramfs/initramfs_fixup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "blockcore/testing/test_shell.h"
#include "fixups/fixup.h"
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

bool has_warning(const FixupPlan& p, const std::string& code) {
  return std::any_of(p.warnings.begin(), p.warnings.end(), [&](const auto& w) { return w.code == code; });
}

const FileChange* change_of(const FixupPlan& p, const std::string& path) {
  for (const auto& c : p.changes)
    if (c.path == path) return &c;
  return nullptr;
}

// A GuestFs that reports a chosen amount of free space, over a folder.
class SmallDisk : public GuestFs {
 public:
  SmallDisk(GuestFsPtr inner, uint64_t free) : inner_(std::move(inner)), free_(free) {}
  Result<std::string> read_file(const std::string& p, size_t m) override { return inner_->read_file(p, m); }
  bool is_file(const std::string& p) override { return inner_->is_file(p); }
  bool is_dir(const std::string& p) override { return inner_->is_dir(p); }
  std::vector<std::string> list_dir(const std::string& p) override { return inner_->list_dir(p); }
  Status write_file(const std::string& p, std::string_view d) override { return inner_->write_file(p, d); }
  bool writable() const override { return inner_->writable(); }
  std::string describe() const override { return "small " + inner_->describe(); }
  std::optional<uint64_t> free_bytes_at(const std::string&) override { return free_; }

 private:
  GuestFsPtr inner_;
  uint64_t free_;
};

class InitramfsFixupTest : public testing::Test {
 protected:
  void SetUp() override {
    if (test::run("command -v cpio && command -v gzip") != 0) GTEST_SKIP() << "cpio/gzip missing";
    if (find_depmod().empty()) GTEST_SKIP() << "kmod's depmod is not installed";
    char d[] = "/tmp/vdkit-initramfs-fixup-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    make_guest(dir_ + "/guest");
  }
  void TearDown() override {
    if (!dir_.empty()) test::run("rm -rf " + dir_);
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run("set -e; cd " + dir_ + " && " + cmd, &out), 0) << cmd << "\n" << out;
  }
  // A Debian guest as a Xen host left it: extlinux booting kernel kKver, whose initramfs-tools image (merged /usr,
  // gzip) holds xen-blkfront only; the kernel's virtio modules are in /lib/modules.
  void make_guest(const std::string& g) {
    std::string k = kKver, m = g + "/usr/lib/modules/" + k;
    sh("mkdir -p " + g + "/boot/extlinux " + g + "/etc/initramfs-tools " + g + "/usr/sbin " + m +
       "/kernel/drivers/block " + m + "/kernel/drivers/virtio && ln -s usr/lib " + g + "/lib && "
       "printf 'ID=debian\\nVERSION_ID=\"12\"\\nPRETTY_NAME=\"Debian GNU/Linux 12\"\\n' > " + g + "/etc/os-release && "
       "echo '/dev/xvda1 / ext4 defaults 0 1' > " + g + "/etc/fstab && echo k > " + g + "/boot/vmlinuz-" + k +
       " && printf 'CONFIG_VIRTIO_BLK=m\\nCONFIG_VIRTIO_PCI=m\\nCONFIG_VIRTIO_NET=m\\nCONFIG_SCSI_VIRTIO=m\\n' > " + g +
       "/boot/config-" + k + " && printf 'DEFAULT l\\nLABEL l\\n  LINUX /boot/vmlinuz-" + k +
       "\\n  INITRD /boot/initrd.img-" + k + "\\n  APPEND root=/dev/xvda1 console=hvc0\\n' > " + g +
       "/boot/extlinux/extlinux.conf && echo xen-blkfront > " + g + "/etc/initramfs-tools/modules && echo x > " + g +
       "/usr/sbin/update-initramfs && "
       "for f in block/virtio_blk block/xen-blkfront virtio/virtio virtio/virtio_ring virtio/virtio_pci; do "
       "echo \"module $f\" > " + m + "/kernel/drivers/$f.ko; done && printf '" +
       "kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\\n"
       "kernel/drivers/virtio/virtio_ring.ko:\\nkernel/drivers/virtio/virtio.ko:\\n"
       "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\\n"
       "kernel/drivers/block/xen-blkfront.ko:\\n' > " + m + "/modules.dep && "
       "rm -rf it && mkdir -p it/conf it/scripts it/usr/lib/modules/" + k + "/kernel/drivers/block && "
       "ln -s usr/lib it/lib && echo '#!/bin/sh' > it/init && echo MODULES=list > it/conf/initramfs.conf && "
       "echo xen-blkfront > it/conf/modules && echo f > it/scripts/functions && cp " + m +
       "/kernel/drivers/block/xen-blkfront.ko it/usr/lib/modules/" + k + "/kernel/drivers/block/ && "
       "(cd it && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) > " + g + "/boot/initrd.img-" + k);
  }
  FixupPlan run(const std::string& root, const FixupOptions& o, bool apply) {
    auto fs = open_folder_guest(root, apply);
    EXPECT_TRUE(fs.ok());
    Inspection in = inspect_guest(**fs, {});
    FixupPlan p = plan_fixups(**fs, in, o);
    if (apply) {
      Status s = apply_fixups(**fs, p, o);
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return p;
  }
  std::string initrd() const { return "/boot/initrd.img-" + std::string(kKver); }
  std::string dir_;
};

TEST_F(InitramfsFixupTest, PlanApplyBackupAndSecondRun) {
  std::string g = dir_ + "/guest";
  std::string old = slurp(g + initrd());
  FixupOptions o;
  o.backup = true;
  FixupPlan dry = run(g, o, false);
  const FileChange* img = change_of(dry, initrd());
  ASSERT_NE(img, nullptr) << to_human(dry);
  EXPECT_TRUE(img->binary);
  EXPECT_NE(img->diff.find("load order: virtio virtio_ring virtio_pci virtio_blk"), std::string::npos) << img->diff;
  // The image is the last change: every config edit is written before it.
  EXPECT_EQ(dry.changes.back().path, initrd());
  const FileChange* conf = change_of(dry, "/etc/initramfs-tools/modules");
  ASSERT_NE(conf, nullptr);
  EXPECT_NE(conf->diff.find("+virtio_blk"), std::string::npos);
  EXPECT_TRUE(has_warning(dry, "virtio-added-to-initrd"));
  EXPECT_FALSE(has_warning(dry, "virtio-missing-from-initrd"));
  EXPECT_EQ(slurp(g + initrd()), old) << "a dry run wrote the image";
  auto j = to_json(dry);
  bool binary_in_json = false;
  for (const auto& c : j["changes"]) binary_in_json |= c.value("binary", false);
  EXPECT_TRUE(binary_in_json);

  run(g, o, true);
  std::string now = slurp(g + initrd());
  EXPECT_EQ(now.compare(0, old.size(), old), 0) << "the old image is no longer the front of the new one";
  EXPECT_EQ(slurp(g + initrd() + ".vdkit-orig"), old);
  std::string seg = now.substr((old.size() + 3) / 4 * 4);
  std::ofstream(dir_ + "/seg.cpio", std::ios::binary) << seg;
  std::string list = test::output_of("cpio -t --quiet < " + dir_ + "/seg.cpio");
  EXPECT_NE(list.find("usr/lib/modules/" + std::string(kKver) + "/kernel/drivers/block/virtio_blk.ko"),
            std::string::npos)
      << list;
  EXPECT_NE(list.find("conf/modules"), std::string::npos);
  EXPECT_EQ(slurp(g + "/etc/initramfs-tools/modules"),
            "xen-blkfront\n# Added by vdkit: the virtio drivers KVM's disk needs\nvirtio_pci\nvirtio_blk\n");
  FixupPlan again = run(g, o, false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  EXPECT_FALSE(has_warning(again, "virtio-missing-from-initrd"));
}

TEST_F(InitramfsFixupTest, EveryInterruptedPrefixConverges) {
  std::string g = dir_ + "/guest";
  FixupOptions o;
  sh("cp -a guest full");
  FixupPlan p = run(dir_ + "/full", o, true);
  ASSERT_GE(p.changes.size(), 2u);
  for (size_t k = 1; k < p.changes.size(); ++k) {
    SCOPED_TRACE("interrupted after " + std::to_string(k) + " of " + std::to_string(p.changes.size()));
    sh("rm -rf part && cp -a guest part");
    for (size_t i = 0; i < k; ++i) std::ofstream(dir_ + "/part" + p.changes[i].path, std::ios::binary) << p.changes[i].after;
    run(dir_ + "/part", o, true);
    EXPECT_EQ(test::run("diff -r --no-dereference " + dir_ + "/full " + dir_ + "/part"), 0);
    EXPECT_TRUE(run(dir_ + "/part", o, false).changes.empty());
  }
}

TEST_F(InitramfsFixupTest, NoInitramfsLeavesImagesAlone) {
  FixupOptions o;
  o.initramfs = false;
  FixupPlan p = run(dir_ + "/guest", o, false);
  EXPECT_EQ(change_of(p, initrd()), nullptr);
  EXPECT_EQ(change_of(p, "/etc/initramfs-tools/modules"), nullptr);
  EXPECT_TRUE(has_warning(p, "virtio-missing-from-initrd"));
}

TEST_F(InitramfsFixupTest, TooLittleRoomChangesNothing) {
  auto folder = open_folder_guest(dir_ + "/guest", false);
  ASSERT_TRUE(folder.ok());
  SmallDisk fs(std::move(*folder), 100000);
  Inspection in = inspect_guest(fs, {});
  FixupPlan p = plan_fixups(fs, in, FixupOptions{});
  EXPECT_EQ(change_of(p, initrd()), nullptr);
  EXPECT_EQ(change_of(p, "/etc/initramfs-tools/modules"), nullptr);
  EXPECT_TRUE(has_warning(p, "initrd-no-space")) << to_human(p);
  EXPECT_TRUE(has_warning(p, "virtio-missing-from-initrd"));
}

TEST_F(InitramfsFixupTest, HostileGuestsStayInside) {
  std::string g = dir_ + "/guest", m = g + "/usr/lib/modules/" + std::string(kKver);
  // 1. /lib/modules a link out of the guest, to a folder that holds what the fixup wants: never read from there.
  sh("mkdir -p outside && cp -a " + m + " outside/ && rm -rf " + g + "/usr/lib/modules && "
     "ln -s ../../../outside " + g + "/usr/lib/modules");
  FixupPlan out = run(g, FixupOptions{}, false);
  EXPECT_EQ(change_of(out, initrd()), nullptr) << to_human(out);
  EXPECT_TRUE(has_warning(out, "virtio-missing-from-initrd"));
  // 2. A module path with "..": refused by name, nothing planned.
  sh("rm " + g + "/usr/lib/modules && mkdir " + g + "/usr/lib/modules && cp -a outside/" + std::string(kKver) + " " + g + "/usr/lib/modules/ && "
     "printf 'kernel/drivers/block/virtio_blk.ko: ../../../../../outside/evil.ko\\n' > " + m + "/modules.dep");
  FixupPlan up = run(g, FixupOptions{}, false);
  EXPECT_EQ(change_of(up, initrd()), nullptr);
  ASSERT_TRUE(has_warning(up, "initrd-not-extended")) << to_human(up);
  // 3. A modules.dep over the limit: named, not read whole.
  sh("truncate -s " + std::to_string(kMaxModulesDepBytes + 1) + " " + m + "/modules.dep");
  FixupPlan big = run(g, FixupOptions{}, false);
  EXPECT_EQ(change_of(big, initrd()), nullptr);
  bool named = false;
  for (const auto& w : big.warnings) named |= w.code == "initrd-not-extended" && w.message.find("modules.dep") != std::string::npos;
  EXPECT_TRUE(named) << to_human(big);
  // Nothing was written anywhere by these dry runs, and the outside folder is as it was.
  EXPECT_EQ(test::run("test ! -e " + dir_ + "/outside/" + std::string(kKver) + "/modules.dep.bin"), 0);
}

// The two older flavours through the whole pass: RHEL 6's dracut 004 (no version file in its image; the drivers go
// on the boot entries as rdloaddriver=) and RHEL 5's nash (insmod lines in /init; modprobe.conf aliases).
TEST_F(InitramfsFixupTest, OlderFlavoursThroughThePass) {
  std::string g = dir_ + "/guest", k = kKver, m = g + "/usr/lib/modules/" + k;
  // dracut 004: the image is dracut's, without lib/dracut/dracut-VERSION.
  sh("mkdir -p " + g + "/etc/dracut.conf.d && rm -rf d && mkdir -p d/lib d/usr/lib/modules/" + k + " && echo x > d/lib/dracut-lib.sh && "
     "echo '#!/bin/sh' > d/init && (cd d && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n) > " + g +
     initrd());
  sh("cp -a guest base6");
  FixupOptions o;
  FixupPlan p = run(g, o, true);
  EXPECT_NE(slurp(g + "/boot/extlinux/extlinux.conf").find("rdloaddriver=virtio_pci,virtio_blk"),
            std::string::npos)
      << to_human(p);
  EXPECT_NE(slurp(g + "/etc/dracut.conf.d/90-vdkit-virtio.conf").find("add_drivers+=\" virtio_pci virtio_blk \""),
            std::string::npos);
  EXPECT_TRUE(run(g, o, false).changes.empty());
  for (size_t n = 1; n < p.changes.size(); ++n) {
    sh("rm -rf part && cp -a base6 part");
    for (size_t i = 0; i < n; ++i) std::ofstream(dir_ + "/part" + p.changes[i].path, std::ios::binary) << p.changes[i].after;
    run(dir_ + "/part", o, true);
    EXPECT_EQ(test::run("diff -r --no-dereference " + g + " " + dir_ + "/part"), 0) << "after " << n;
  }
  // nash: RHEL 5's modules (plain .ko, absolute paths in modules.dep) and an image from make-nash-initrd.
  sh("rm -rf guest && mv base6 guest && rm -f " + g + "/etc/initramfs-tools/modules && echo xen > xenblk.ko && " +
     std::string(VDKIT_SOURCE_DIR) + "/tests/tools/make-nash-initrd " + g + initrd() + " /dev/xvda1 xenblk.ko && "
     "sed -i 's#^kernel/#/lib/modules/" + k + "/kernel/#; s# kernel/# /lib/modules/" + k + "/kernel/#g' " + m +
     "/modules.dep && printf 'alias eth0 xennet\nalias scsi_hostadapter xenblk\n' > " + g + "/etc/modprobe.conf");
  FixupPlan n5 = run(g, o, true);
  EXPECT_EQ(slurp(g + "/etc/modprobe.conf"),
            "alias eth0 xennet\nalias scsi_hostadapter xenblk\nalias scsi_hostadapter1 virtio_pci\n"
            "alias scsi_hostadapter2 virtio_blk\n")
      << to_human(n5);
  EXPECT_TRUE(run(g, o, false).changes.empty());
  std::string img = slurp(g + initrd());
  auto c = read_initramfs(img, [](std::string_view n, uint32_t, uint64_t) { return n == "init"; });
  ASSERT_TRUE(c.ok());
  std::string init;
  for (const auto& e : c->entries)
    if (e.name == "init") init = e.data;  // the last one wins, as at unpack
  EXPECT_NE(init.find("insmod /lib/virtio_blk.ko"), std::string::npos) << init;
}

TEST(InitramfsConfigEdits, Idempotent) {
  std::vector<std::string> d{"virtio_pci", "virtio_blk"};
  std::string t = add_initramfs_tools_modules("# comment\nxen-blkfront\nvirtio_pci\n", d);
  EXPECT_EQ(t, "# comment\nxen-blkfront\nvirtio_pci\n# Added by vdkit: the virtio drivers KVM's disk needs\nvirtio_blk\n");
  EXPECT_EQ(add_initramfs_tools_modules(t, d), t);
  std::string c = dracut_conf_with_drivers("", d);
  EXPECT_NE(c.find("add_drivers+=\" virtio_pci virtio_blk \""), std::string::npos);
  EXPECT_EQ(dracut_conf_with_drivers(c, d), c);
  std::string mp = add_scsi_hostadapter_aliases("alias eth0 xennet\nalias scsi_hostadapter xenblk\n", d);
  EXPECT_EQ(mp, "alias eth0 xennet\nalias scsi_hostadapter xenblk\nalias scsi_hostadapter1 virtio_pci\n"
                "alias scsi_hostadapter2 virtio_blk\n");
  EXPECT_EQ(add_scsi_hostadapter_aliases(mp, d), mp);
}

}  // namespace
}  // namespace vdkit::fixups
