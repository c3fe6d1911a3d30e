// plan_fixups on small folder guests: warnings (disks, boot loader, initrd, cloud-init), idempotence, --no-network.
#include "fixups/fixup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

namespace vdkit::fixups {
namespace {

class PlanTest : public testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vdkit-plan-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    root_ = d;
  }
  void TearDown() override { (void)system(("rm -rf " + root_).c_str()); }
  void put(const std::string& path, const std::string& text) {
    (void)system(("mkdir -p " + root_ + guest_dirname(path)).c_str());
    std::ofstream(root_ + path, std::ios::binary) << text;
  }
  // Inspects and plans; applies when asked.
  FixupPlan plan(bool apply, const FixupOptions& o = {}) {
    auto fs = open_folder_guest(root_, apply);
    EXPECT_TRUE(fs.ok());
    Inspection in = inspect_guest(**fs, filesystems_);
    FixupPlan p = plan_fixups(**fs, in, o);
    if (apply) {
      EXPECT_TRUE(apply_fixups(**fs, p, o).ok());
    }
    return p;
  }
  static bool has_warning(const FixupPlan& p, const std::string& code) {
    for (const auto& w : p.warnings)
      if (w.code == code) return true;
    return false;
  }
  std::string root_;
  std::vector<FsInfo> filesystems_;
};

TEST_F(PlanTest, MoreThanOneDiskAndNoBootLoader) {
  FsInfo f;
  f.partition = 1;
  f.type = "ext4";
  f.uuid = "01234567-89ab-cdef-0123-456789abcdef";
  filesystems_ = {f};
  put("/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n/dev/sdb1 /data ext4 defaults 0 2\n");
  FixupPlan p = plan(true);
  EXPECT_TRUE(has_warning(p, "more-than-one-disk"));
  EXPECT_TRUE(has_warning(p, "no-boot-loader"));
  EXPECT_TRUE(has_warning(p, "no-cloud-init"));
  ASSERT_EQ(p.changes.size(), 1u);
  EXPECT_EQ(p.changes[0].path, "/etc/fstab");
  EXPECT_EQ(p.changes[0].after,
            "UUID=01234567-89ab-cdef-0123-456789abcdef / ext4 defaults 0 1\n/dev/sdb1 /data ext4 defaults 0 2\n");
  FixupPlan again = plan(false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  EXPECT_TRUE(has_warning(again, "unknown-disk"));
}

TEST_F(PlanTest, InitrdWithoutVirtioGetsTheDistroCommand) {
  put("/etc/os-release", "ID=debian\nVERSION_ID=\"9\"\n");
  put("/etc/fstab", "UUID=x / ext4 defaults 0 1\n");
  put("/boot/vmlinuz-4.9.0-8-amd64", "k");
  put("/boot/config-4.9.0-8-amd64",
      "CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_VIRTIO_NET=m\nCONFIG_SCSI_VIRTIO=m\n");
  // An initrd libarchive cannot read is reported, not fatal.
  put("/boot/initrd.img-4.9.0-8-amd64", "garbage");
  put("/usr/bin/cloud-init", "x");
  FixupPlan p = plan(false);
  EXPECT_TRUE(has_warning(p, "initrd-unreadable"));
  EXPECT_FALSE(has_warning(p, "no-cloud-init"));
  put("/boot/initrd.img-4.9.0-8-amd64", "");
  (void)system(("cd " + root_ +
                " && mkdir -p i/lib && echo x > i/lib/ext4.ko && cd i && find . | cpio -o -H newc --quiet | gzip > "
                "../boot/initrd.img-4.9.0-8-amd64")
                   .c_str());
  p = plan(false);
  ASSERT_TRUE(has_warning(p, "virtio-missing-from-initrd"));
  for (const auto& w : p.warnings) {
    if (w.code != "virtio-missing-from-initrd") continue;
    EXPECT_EQ(w.command,
              "printf 'virtio_blk\\nvirtio_pci\\nvirtio_scsi\\n' >> /etc/initramfs-tools/modules && "
              "update-initramfs -u -k 4.9.0-8-amd64");
  }
}

TEST_F(PlanTest, NoNetworkAndGeneratorMask) {
  put("/etc/sysconfig/network-scripts/ifcfg-eth0", "BOOTPROTO=static\nIPADDR=1.2.3.4\nHWADDR=aa\n");
  put("/lib/udev/rules.d/75-persistent-net-generator.rules", "x\n");
  put("/etc/udev/rules.d/README", "");
  FixupOptions o;
  o.network = false;
  FixupPlan p = plan(true, o);
  ASSERT_EQ(p.changes.size(), 1u);
  EXPECT_TRUE(p.changes[0].created);
  EXPECT_EQ(p.changes[0].path, "/etc/udev/rules.d/75-persistent-net-generator.rules");
  EXPECT_TRUE(plan(false, o).changes.empty());
  p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u);
  EXPECT_EQ(p.changes[0].after, "BOOTPROTO=dhcp\n");
  EXPECT_TRUE(plan(false).changes.empty());
}

}  // namespace
}  // namespace vdkit::fixups
