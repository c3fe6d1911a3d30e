// plan_fixups on small folder guests: warnings (disks, boot loader, initrd, cloud-init), idempotence, --no-network.
#include "fixups/fixup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "fixups/inspect_report.h"

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
  // A kernel with virtio built in, and a Xen kernel with none.
  void kvm_kernel(const std::string& version) {
    put("/boot/vmlinuz-" + version, "k");
    put("/boot/config-" + version,
        "CONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_NET=y\nCONFIG_SCSI_VIRTIO=y\n");
  }
  void xen_kernel(const std::string& version) {
    put("/boot/vmlinuz-" + version, "k");
    put("/boot/config-" + version, "# CONFIG_VIRTIO_BLK is not set\nCONFIG_XEN_BLKDEV_FRONTEND=y\n");
  }
  static std::string grubenv(const std::string& vars) {
    std::string env = "# GRUB Environment Block\n" + vars;
    return env + std::string(1024 - env.size(), '#');
  }
  const FileChange* change(const FixupPlan& p, const std::string& path) {
    for (const auto& c : p.changes)
      if (c.path == path) return &c;
    return nullptr;
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

TEST_F(PlanTest, SecondDiskNamedWhenRootIsByUuid) {
  // Two disks given, each with one partition at the same offset; root by UUID on the first, /data by its Xen name
  // on the second: the first given disk is xvda, so /dev/xvdb1 is the second disk's partition.
  FsInfo root, data;
  root.partition = data.partition = 1;
  root.offset = data.offset = 1 << 20;
  root.type = data.type = "ext4";
  root.uuid = "01234567-89ab-cdef-0123-456789abcdef";
  data.disk = 1;
  data.uuid = "11111111-89ab-cdef-0123-456789abcdef";
  filesystems_ = {root, data};
  put("/etc/fstab", "UUID=" + root.uuid + " / ext4 defaults 0 1\n/dev/xvdb1 /data ext4 defaults 0 2\n");
  FixupPlan p = plan(false);
  EXPECT_EQ(p.boot_disk, 0);
  EXPECT_FALSE(has_warning(p, "unknown-disk")) << to_human(p);
  ASSERT_NE(change(p, "/etc/fstab"), nullptr);
  EXPECT_EQ(change(p, "/etc/fstab")->after,
            "UUID=" + root.uuid + " / ext4 defaults 0 1\nUUID=" + data.uuid + " /data ext4 defaults 0 2\n");
}

TEST_F(PlanTest, LabelNamingWarnsForAFileSystemWithoutALabel) {
  FsInfo root, data;
  root.partition = 1;
  root.type = "ext4";
  root.uuid = "01234567-89ab-cdef-0123-456789abcdef";
  root.label = "rootfs";
  data.partition = 2;
  data.type = "ext4";
  data.uuid = "11111111-89ab-cdef-0123-456789abcdef";
  filesystems_ = {root, data};
  put("/etc/fstab", "/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 /data ext4 defaults 0 2\n");
  FixupOptions o;
  o.naming = DeviceNaming::kLabel;
  FixupPlan p = plan(false, o);
  ASSERT_NE(change(p, "/etc/fstab"), nullptr);
  EXPECT_EQ(change(p, "/etc/fstab")->after,
            "LABEL=rootfs / ext4 defaults 0 1\nUUID=11111111-89ab-cdef-0123-456789abcdef /data ext4 defaults 0 2\n");
  int n = 0;
  for (const auto& w : p.warnings)
    if (w.code == "no-label") {
      ++n;
      EXPECT_NE(w.message.find("partition 2 has no label"), std::string::npos) << w.message;
    }
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(has_warning(plan(false), "no-label"));  // UUID naming asked for nothing else
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
  o.network = NetworkMode::kNone;
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

// --network keep: the static ifcfg keeps its address and gateway, its default route stays, the MAC pin goes.
TEST_F(PlanTest, KeepNetworkKeepsAddressesAndRoutes) {
  put("/etc/sysconfig/network-scripts/ifcfg-eth0", "BOOTPROTO=static\nIPADDR=1.2.3.4\nGATEWAY=1.2.3.1\nHWADDR=aa\n");
  put("/etc/sysconfig/network-scripts/route-eth0", "default via 1.2.3.1 dev eth0\n");
  FixupOptions o;
  o.network = NetworkMode::kKeep;
  FixupPlan p = plan(true, o);
  ASSERT_EQ(p.changes.size(), 1u);
  EXPECT_EQ(p.changes[0].path, "/etc/sysconfig/network-scripts/ifcfg-eth0");
  EXPECT_EQ(p.changes[0].after, "BOOTPROTO=static\nIPADDR=1.2.3.4\nGATEWAY=1.2.3.1\n");
  EXPECT_TRUE(plan(false, o).changes.empty());
  // The default run afterwards still makes it DHCP and comments the route out: keep is not a one-way door.
  p = plan(true);
  ASSERT_EQ(p.changes.size(), 2u);
  EXPECT_EQ(p.changes[0].after, "# default via 1.2.3.1 dev eth0\n");
  EXPECT_EQ(p.changes[1].after, "BOOTPROTO=dhcp\n");
}

// Debian: the Xen kernel is the top entry and default "0"; the generic one lives in the "Advanced options" submenu.
TEST_F(PlanTest, Grub2DefaultMovesIntoTheSubmenu) {
  put("/etc/os-release", "ID=debian\nVERSION_ID=\"7\"\n");
  xen_kernel("3.2.0-4-xen-amd64");
  kvm_kernel("3.2.0-4-amd64");
  std::string cfg =
      "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"0\"\nfi\n"
      "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-u1' {\n"
      "\tlinux\t/boot/vmlinuz-3.2.0-4-xen-amd64 root=UUID=u1 ro\n}\n"
      "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-u1' {\n"
      "\tmenuentry 'Debian GNU/Linux, with Linux 3.2.0-4-xen-amd64' $menuentry_id_option 'gnulinux-x-u1' {\n"
      "\t\tlinux\t/boot/vmlinuz-3.2.0-4-xen-amd64 root=UUID=u1 ro\n\t}\n"
      "\tmenuentry 'Debian GNU/Linux, with Linux 3.2.0-4-amd64 (recovery mode)' $menuentry_id_option 'gnulinux-r-u1' "
      "{\n"
      "\t\tlinux\t/boot/vmlinuz-3.2.0-4-amd64 root=UUID=u1 ro single\n\t}\n"
      "\tmenuentry 'Debian GNU/Linux, with Linux 3.2.0-4-amd64' $menuentry_id_option 'gnulinux-k-u1' {\n"
      "\t\tlinux\t/boot/vmlinuz-3.2.0-4-amd64 root=UUID=u1 ro\n\t}\n}\n";
  put("/boot/grub/grub.cfg", cfg);
  put("/etc/default/grub", "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n");
  FixupPlan p = plan(true);
  const FileChange* c = change(p, "/boot/grub/grub.cfg");
  ASSERT_NE(c, nullptr) << to_human(p);
  std::string want = cfg;
  want.replace(want.find("set default=\"0\""), 15, "set default=\"gnulinux-advanced-u1>gnulinux-k-u1\"");
  EXPECT_EQ(c->after, want);
  EXPECT_EQ(c->reasons, std::vector<std::string>{"default kernel"});
  c = change(p, "/etc/default/grub");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->after, "GRUB_DEFAULT=\"gnulinux-advanced-u1>gnulinux-k-u1\"\nGRUB_TIMEOUT=5\n");
  EXPECT_TRUE(has_warning(p, "xen-only-kernel"));
  EXPECT_FALSE(has_warning(p, "xen-default-entry"));
  FixupPlan again = plan(false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  auto fs = open_folder_guest(root_, false);
  ASSERT_TRUE(fs.ok());
  Inspection in = inspect_guest(**fs, {});
  ASSERT_EQ(in.boot_loaders.size(), 1u);
  EXPECT_EQ(in.boot_loaders[0].default_index, 3);
}

// SUSE / RHEL 7 (GRUB_DEFAULT=saved): the default is grubenv's saved_entry, a title path to the Xen entry.
TEST_F(PlanTest, Grub2SavedEntryIsRewrittenInGrubenv) {
  xen_kernel("3.11.6-4-xen");
  kvm_kernel("3.11.6-4-default");
  std::string cfg =
      "if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\nelse\n   set default=\"${saved_entry}\"\nfi\n"
      "menuentry 'openSUSE' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-default\n}\n"
      "submenu 'Advanced' {\n"
      "\tmenuentry 'openSUSE, with Linux 3.11.6-4-xen' {\n\t\tlinux\t/boot/vmlinuz-3.11.6-4-xen\n\t}\n"
      "\tmenuentry 'openSUSE, with Linux 3.11.6-4-default' {\n\t\tlinux\t/boot/vmlinuz-3.11.6-4-default\n\t}\n}\n";
  put("/boot/grub2/grub.cfg", cfg);
  put("/boot/grub2/grubenv", grubenv("saved_entry=Advanced>openSUSE, with Linux 3.11.6-4-xen\n"));
  put("/etc/default/grub", "GRUB_DEFAULT=saved\n");
  auto fs = open_folder_guest(root_, false);
  ASSERT_TRUE(fs.ok());
  Inspection in = inspect_guest(**fs, {});
  ASSERT_EQ(in.boot_loaders.size(), 1u);
  EXPECT_EQ(in.boot_loaders[0].default_value, "${saved_entry}");
  EXPECT_EQ(in.boot_loaders[0].saved_entry, "Advanced>openSUSE, with Linux 3.11.6-4-xen");
  EXPECT_EQ(in.boot_loaders[0].default_index, 1);
  FixupPlan p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u) << to_human(p);
  EXPECT_EQ(p.changes[0].path, "/boot/grub2/grubenv");
  EXPECT_EQ(p.changes[0].after, grubenv("saved_entry=openSUSE\n"));  // the first KVM entry, by title (no ids)
  EXPECT_TRUE(plan(false).changes.empty());
}

// grub.cfg and /etc/default/grub disagree: both sides end up on the KVM entry, so neither this boot nor the next
// update-grub goes back to Xen.
TEST_F(PlanTest, Grub2LiteralDefaultWithGrubDefaultSaved) {
  xen_kernel("3.11.6-4-xen");
  kvm_kernel("3.11.6-4-default");
  put("/boot/grub2/grub.cfg",
      "set default=\"0\"\nmenuentry 'Xen' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-xen\n}\n"
      "menuentry 'Default' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-default\n}\n");
  put("/boot/grub2/grubenv", grubenv("saved_entry=Xen\n"));
  put("/etc/default/grub", "GRUB_DEFAULT=saved\n");
  FixupPlan p = plan(true);
  ASSERT_NE(change(p, "/boot/grub2/grub.cfg"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/boot/grub2/grub.cfg")->after.substr(0, 22), "set default=\"Default\"\n");
  ASSERT_NE(change(p, "/boot/grub2/grubenv"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/boot/grub2/grubenv")->after, grubenv("saved_entry=Default\n"));
  EXPECT_EQ(change(p, "/etc/default/grub"), nullptr);
  EXPECT_TRUE(plan(false).changes.empty());
  // Without a grubenv to save it in, a warning with the command.
  (void)system(("rm " + root_ + "/boot/grub2/grubenv").c_str());
  put("/boot/grub2/grub.cfg",
      "set default=\"0\"\nmenuentry 'Xen' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-xen\n}\n"
      "menuentry 'Default' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-default\n}\n");
  p = plan(false);
  EXPECT_NE(change(p, "/boot/grub2/grub.cfg"), nullptr);
  EXPECT_TRUE(has_warning(p, "xen-default-entry"));
}

TEST_F(PlanTest, Grub2SavedEntryWithLiteralGrubDefault) {
  xen_kernel("3.11.6-4-xen");
  kvm_kernel("3.11.6-4-default");
  put("/boot/grub2/grub.cfg",
      "set default=\"${saved_entry}\"\nmenuentry 'Xen' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-xen\n}\n"
      "menuentry 'Default' {\n\tlinux\t/boot/vmlinuz-3.11.6-4-default\n}\n");
  put("/boot/grub2/grubenv", grubenv("saved_entry=Xen\n"));
  put("/etc/default/grub", "GRUB_DEFAULT=0\n");
  FixupPlan p = plan(true);
  ASSERT_NE(change(p, "/boot/grub2/grubenv"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/boot/grub2/grubenv")->after, grubenv("saved_entry=Default\n"));
  ASSERT_NE(change(p, "/etc/default/grub"), nullptr);
  EXPECT_EQ(change(p, "/etc/default/grub")->after, "GRUB_DEFAULT=\"Default\"\n");
  EXPECT_EQ(change(p, "/boot/grub2/grub.cfg"), nullptr);
  EXPECT_TRUE(plan(false).changes.empty());
}

// saved_entry as a title or a number (grub2-set-default accepts both): resolved over blscfg's newest-first menu,
// id before title before number, and a Xen one switched to the newest KVM entry's id.
TEST_F(PlanTest, BlsSavedEntryAsTitleOrNumber) {
  kvm_kernel("4.18.0-80.el8.x86_64");
  kvm_kernel("4.18.0-147.el8.x86_64");
  xen_kernel("5.0.0-xen");
  for (const char* v : {"4.18.0-80.el8.x86_64", "4.18.0-147.el8.x86_64", "5.0.0-xen"})
    put(std::string("/boot/loader/entries/0abc-") + v + ".conf",
        std::string("title L ") + v + "\nversion " + v + "\nlinux /vmlinuz-" + v + "\noptions root=UUID=u ro\n");
  auto fs = open_folder_guest(root_, false);
  ASSERT_TRUE(fs.ok());
  std::vector<BootEntry> es = inspect_guest(**fs, {}).boot_loaders.at(0).entries;
  ASSERT_EQ(es.size(), 3u);
  auto index_of = [&](const std::string& v) {
    for (size_t k = 0; k < es.size(); ++k)
      if (es[k].version == v) return static_cast<int>(k);
    return -1;
  };
  int xen = index_of("5.0.0-xen"), newest_kvm = index_of("4.18.0-147.el8.x86_64"), old = index_of("4.18.0-80.el8.x86_64");
  // Menu: 5.0.0-xen, 4.18.0-147, 4.18.0-80.
  EXPECT_EQ(resolve_bls_default(es, "0"), xen);
  EXPECT_EQ(resolve_bls_default(es, "2"), old);
  EXPECT_EQ(resolve_bls_default(es, "0x1"), newest_kvm);
  EXPECT_EQ(resolve_bls_default(es, "7"), xen);  // out of range: the first
  EXPECT_EQ(resolve_bls_default(es, "L 4.18.0-80.el8.x86_64"), old);
  EXPECT_EQ(resolve_bls_default(es, "0abc-4.18.0-80.el8.x86_64"), old);  // an id, though it starts with a digit
  EXPECT_EQ(resolve_bls_default(es, ""), xen);
  EXPECT_EQ(resolve_bls_default(es, "nothing"), xen);
  EXPECT_EQ(resolve_bls_default({}, "0"), -1);
  put("/boot/grub2/grubenv", grubenv("saved_entry=L 4.18.0-80.el8.x86_64\n"));
  EXPECT_TRUE(plan(false).changes.empty());  // a KVM default stays
  put("/boot/grub2/grubenv", grubenv("saved_entry=0\n"));
  FixupPlan p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u) << to_human(p);
  EXPECT_EQ(p.changes[0].after, grubenv("saved_entry=0abc-4.18.0-147.el8.x86_64\n"));
  EXPECT_TRUE(plan(false).changes.empty());
}

// RHEL 8: saved_entry names a Xen entry; the newest KVM entry (by version, not by name) becomes the default.
TEST_F(PlanTest, BlsSavedEntryOnXen) {
  kvm_kernel("4.18.0-80.el8.x86_64");
  kvm_kernel("4.18.0-147.el8.x86_64");
  xen_kernel("4.9.0-xen");
  for (const char* v : {"4.18.0-80.el8.x86_64", "4.18.0-147.el8.x86_64", "4.9.0-xen"})
    put(std::string("/boot/loader/entries/m-") + v + ".conf",
        std::string("title L ") + v + "\nversion " + v + "\nlinux /vmlinuz-" + v + "\noptions root=UUID=u ro\n");
  put("/boot/grub2/grubenv", grubenv("saved_entry=m-4.9.0-xen\n"));
  FixupPlan p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u) << to_human(p);
  EXPECT_EQ(p.changes[0].after, grubenv("saved_entry=m-4.18.0-147.el8.x86_64\n"));
  EXPECT_TRUE(plan(false).changes.empty());
}

// No saved_entry: blscfg boots the newest, here the Xen one (4.18.0-147 sorts after -80 only as versions do).
TEST_F(PlanTest, BlsNewestIsXen) {
  kvm_kernel("4.18.0-80.el8.x86_64");
  xen_kernel("4.18.0-147.xen");
  for (const char* v : {"4.18.0-80.el8.x86_64", "4.18.0-147.xen"})
    put(std::string("/boot/loader/entries/m-") + v + ".conf",
        std::string("title L ") + v + "\nversion " + v + "\nlinux /vmlinuz-" + v + "\noptions root=UUID=u ro\n");
  {
    auto fs = open_folder_guest(root_, false);
    ASSERT_TRUE(fs.ok());
    Inspection in = inspect_guest(**fs, {});
    ASSERT_EQ(in.boot_loaders.size(), 1u);
    ASSERT_EQ(in.boot_loaders[0].entries.size(), 2u);
    EXPECT_EQ(in.boot_loaders[0].entries[0].id, "m-4.18.0-147.xen");  // name order
    EXPECT_EQ(in.boot_loaders[0].default_index, 0);                   // but the newest
  }
  // Without a grubenv there is nothing to save it in: a warning with grubby's command.
  FixupPlan p = plan(false);
  EXPECT_TRUE(p.changes.empty()) << to_human(p);
  ASSERT_TRUE(has_warning(p, "xen-default-entry"));
  for (const auto& w : p.warnings) {
    if (w.code != "xen-default-entry") continue;
    EXPECT_EQ(w.command, "grubby --set-default /boot/vmlinuz-4.18.0-80.el8.x86_64");
  }
  put("/boot/grub2/grubenv", grubenv("kernelopts=root=UUID=u ro\n"));
  p = plan(true);
  ASSERT_EQ(p.changes.size(), 1u) << to_human(p);
  EXPECT_EQ(p.changes[0].after, grubenv("kernelopts=root=UUID=u ro\nsaved_entry=m-4.18.0-80.el8.x86_64\n"));
  EXPECT_FALSE(has_warning(p, "xen-default-entry"));
  EXPECT_TRUE(plan(false).changes.empty());
}

// kernelopts that would outgrow grub's 1024-byte block are left alone, with a warning, never a longer grubenv.
TEST_F(PlanTest, GrubenvWithNoRoomWarns) {
  std::string head = "# GRUB Environment Block\nkernelopts=console=hvc0 console=hvc0 ";
  head += std::string(1024 - 1 - 1 - head.size(), 'x') + "\n";  // one '#' of padding; the rewrite needs two more
  put("/boot/grub2/grubenv", head + "#");
  FixupPlan p = plan(true);
  EXPECT_EQ(change(p, "/boot/grub2/grubenv"), nullptr) << to_human(p);
  EXPECT_TRUE(has_warning(p, "grubenv-full")) << to_human(p);
}

// A VMware PCI name (ens192) will not exist on KVM: warned, with or without cloud-init; eth0 is not warned about.
TEST_F(PlanTest, PredictableNameFromTheOldHypervisorWarns) {
  put("/etc/netplan/01-net.yaml",
      "network:\n  version: 2\n  ethernets:\n    ens192:\n      dhcp4: true\n");
  FixupPlan p = plan(false);
  ASSERT_TRUE(has_warning(p, "nic-name-may-change")) << to_human(p);
  put("/etc/netplan/01-net.yaml", "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n");
  EXPECT_FALSE(has_warning(plan(false), "nic-name-may-change"));
}

// fstab already names everything by UUID: the /dev names left elsewhere are mapped only when they are plainly this
// disk's (a run cut off part way left resume=/dev/sda2); a second disk's names stay, with the warning.
TEST_F(PlanTest, NamesLeftBesideAFixedFstab) {
  FsInfo boot, root, swap;
  boot.partition = 1, boot.type = "ext4", boot.uuid = "11111111-0000-4000-8000-000000000001", boot.offset = 1 << 20;
  root.partition = 2, root.type = "ext4", root.uuid = "11111111-0000-4000-8000-000000000002", root.offset = 2 << 20;
  swap.partition = 3, swap.type = "swap", swap.uuid = "11111111-0000-4000-8000-000000000003", swap.offset = 3 << 20;
  filesystems_ = {boot, root, swap};
  put("/etc/fstab", "UUID=" + boot.uuid + " /boot ext4 defaults 0 2\nUUID=" + root.uuid +
                        " / ext4 defaults 0 1\n/dev/mapper/data /data ext4 defaults 0 2\n");
  put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"resume=/dev/sda3 quiet\"\n");
  FixupPlan p = plan(false);
  ASSERT_NE(change(p, "/etc/default/grub"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/etc/default/grub")->after, "GRUB_CMDLINE_LINUX=\"resume=UUID=" + swap.uuid + " quiet\"\n");
  // A LUKS data disk b: its name must not land on this disk's /boot.
  put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"quiet\"\n");
  put("/etc/crypttab", "data /dev/sdb1 none luks\n");
  p = plan(false);
  EXPECT_EQ(change(p, "/etc/crypttab"), nullptr) << to_human(p);
  EXPECT_TRUE(has_warning(p, "unknown-disk")) << to_human(p);
  // Nor a crypttab name on disk a that lands on a file system (LUKS reads as unknown), nor swap on a second disk.
  put("/etc/crypttab", "data /dev/sda1 none luks\n");
  EXPECT_EQ(change(plan(false), "/etc/crypttab"), nullptr);
  put("/etc/crypttab", "");
  put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"resume=/dev/sdb1\"\n");
  p = plan(false);
  EXPECT_EQ(change(p, "/etc/default/grub"), nullptr) << to_human(p);
  EXPECT_TRUE(has_warning(p, "unknown-disk"));
}

// A static interface becomes DHCP: its default routes go with its address, before the ifcfg is written; a DHCP
// interface's routes are the guest's business.
TEST_F(PlanTest, StaticGatewayRoutesGoWithTheAddress) {
  put("/etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='static'\nIPADDR='192.168.122.13/24'\n");
  put("/etc/sysconfig/network/routes", "default 192.168.122.1 - -\n");
  put("/etc/sysconfig/network/ifroute-eth0", "default 192.168.122.1 - eth0\n");
  put("/etc/sysconfig/network-scripts/ifcfg-eth1", "BOOTPROTO=none\nIPADDR=10.0.0.5\nGATEWAY=10.0.0.1\n");
  put("/etc/sysconfig/network-scripts/route-eth1", "default via 10.0.0.1 dev eth1\n10.8.0.0/16 via 10.0.0.9\n");
  FixupPlan p = plan(true);
  ASSERT_NE(change(p, "/etc/sysconfig/network/routes"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/etc/sysconfig/network/routes")->after, "# default 192.168.122.1 - -\n");
  ASSERT_NE(change(p, "/etc/sysconfig/network/ifroute-eth0"), nullptr);
  ASSERT_NE(change(p, "/etc/sysconfig/network-scripts/route-eth1"), nullptr);
  EXPECT_EQ(change(p, "/etc/sysconfig/network-scripts/route-eth1")->after,
            "# default via 10.0.0.1 dev eth1\n10.8.0.0/16 via 10.0.0.9\n");
  size_t routes = 0, ifcfg = 0;
  for (size_t k = 0; k < p.changes.size(); ++k) {
    if (p.changes[k].path == "/etc/sysconfig/network/routes") routes = k;
    if (p.changes[k].path == "/etc/sysconfig/network/ifcfg-eth0") ifcfg = k;
  }
  EXPECT_LT(routes, ifcfg);
  EXPECT_TRUE(plan(false).changes.empty());
  // NetworkManager's file name with DEVICE inside: route-DEVICE is the interface's too.
  put("/etc/sysconfig/network-scripts/ifcfg-System_eth2", "DEVICE=eth2\nBOOTPROTO=none\nIPADDR=10.0.2.5\n");
  put("/etc/sysconfig/network-scripts/route-eth2", "default via 10.0.2.1 dev eth2\n");
  FixupPlan with_eth2 = plan(false);
  const FileChange* eth2 = change(with_eth2, "/etc/sysconfig/network-scripts/route-eth2");
  ASSERT_NE(eth2, nullptr);
  EXPECT_EQ(eth2->after, "# default via 10.0.2.1 dev eth2\n");
  // Already DHCP: a default route in routes is left alone.
  put("/etc/sysconfig/network/routes", "default 192.168.122.1 - -\n");
  EXPECT_EQ(change(plan(false), "/etc/sysconfig/network/routes"), nullptr);
  // --no-network: nothing.
  put("/etc/sysconfig/network/ifcfg-eth0", "BOOTPROTO='static'\nIPADDR='192.168.122.13/24'\n");
  FixupOptions off;
  off.network = NetworkMode::kNone;
  EXPECT_EQ(change(plan(false, off), "/etc/sysconfig/network/routes"), nullptr);
}

// With systemd's predictable names on, a lone netplan NIC keyed ens192 is matched by "en*": the virtio NIC takes it.
TEST_F(PlanTest, LonePredictableNetplanNameIsMatchedByAGlob) {
  put("/usr/lib/udev/rules.d/80-net-setup-link.rules", "x\n");
  put("/etc/netplan/01-net.yaml", "network:\n  version: 2\n  ethernets:\n    ens192:\n      dhcp4: true\n");
  FixupOptions off;
  off.network = NetworkMode::kNone;
  EXPECT_TRUE(has_warning(plan(false, off), "nic-name-may-change"));  // --no-network: reported only
  FixupPlan p = plan(true);
  ASSERT_NE(change(p, "/etc/netplan/01-net.yaml"), nullptr) << to_human(p);
  EXPECT_EQ(change(p, "/etc/netplan/01-net.yaml")->after,
            "network:\n  version: 2\n  ethernets:\n    ens192:\n      match:\n        name: \"en*\"\n      dhcp4: true\n");
  EXPECT_TRUE(has_warning(p, "nic-matched-by-name")) << to_human(p);
  EXPECT_FALSE(has_warning(p, "nic-name-may-change")) << to_human(p);
  FixupPlan again = plan(false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  EXPECT_TRUE(again.warnings.empty() || (!has_warning(again, "nic-matched-by-name") &&
                                         !has_warning(again, "nic-name-may-change")))
      << to_human(again);
  // renderer: NetworkManager in any file (Ubuntu Desktop's 01-network-manager-all.yaml): the NM backend of that era
  // refuses globs and netplan generate would fail, so the name is only reported.
  put("/etc/netplan/01-net.yaml", "network:\n  version: 2\n  ethernets:\n    ens192:\n      dhcp4: true\n");
  put("/etc/netplan/00-nm.yaml", "network:\n  version: 2\n  renderer: NetworkManager\n");
  p = plan(false);
  EXPECT_EQ(change(p, "/etc/netplan/01-net.yaml"), nullptr) << to_human(p);
  EXPECT_TRUE(has_warning(p, "nic-name-may-change"));
  (void)system(("rm " + root_ + "/etc/netplan/00-nm.yaml").c_str());
  // A second NIC in another file: one glob would take both, so neither is touched and both are reported.
  put("/etc/netplan/01-net.yaml", "network:\n  version: 2\n  ethernets:\n    ens192:\n      dhcp4: true\n");
  put("/etc/netplan/02-net.yaml", "network:\n  version: 2\n  ethernets:\n    ens224:\n      dhcp4: true\n");
  p = plan(false);
  EXPECT_EQ(change(p, "/etc/netplan/01-net.yaml"), nullptr) << to_human(p);
  EXPECT_TRUE(has_warning(p, "nic-name-may-change"));
}

// Only Xen kernels: reported, nothing edited.
TEST_F(PlanTest, NoKvmKernelOnlyWarns) {
  xen_kernel("3.2.0-4-xen-amd64");
  put("/boot/grub/grub.cfg", "set default=\"0\"\nmenuentry 'x' {\n linux /boot/vmlinuz-3.2.0-4-xen-amd64\n}\n");
  put("/etc/default/grub", "GRUB_DEFAULT=0\n");
  FixupPlan p = plan(false);
  EXPECT_TRUE(p.changes.empty()) << to_human(p);
  EXPECT_TRUE(has_warning(p, "xen-only-kernel"));
  EXPECT_TRUE(has_warning(p, "no-kvm-kernel"));
}

// A systemd guest whose network config names eth0: on KVM udev would call the virtio NIC ens3.
class NicNamesTest : public PlanTest {
 protected:
  void guest(bool eth = true) {
    kvm_kernel("5.14.0");
    put("/usr/lib/udev/rules.d/80-net-setup-link.rules", "NAME==\"\", ENV{ID_NET_NAME}!=\"\", NAME=\"$env{ID_NET_NAME}\"\n");
    put("/boot/grub2/grub.cfg",
        "set default=0\nmenuentry 'L' {\n\tlinux /vmlinuz-5.14.0 root=UUID=x ro\n\tinitrd /initramfs-5.14.0.img\n}\n");
    put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"rhgb quiet\"\n");
    put(std::string("/etc/sysconfig/network-scripts/ifcfg-") + (eth ? "eth0" : "ens5"),
        "BOOTPROTO=dhcp\nHWADDR=00:16:3e:00:00:01\n");
  }
  std::string text(const FixupPlan& p, const std::string& path) {
    const FileChange* c = change(p, path);
    return c ? c->after : "<unchanged>";
  }
};

TEST_F(NicNamesTest, Eth0ConfigGetsNetIfnamesZeroOnce) {
  guest();
  put("/usr/sbin/biosdevname", "b");
  {
    auto fs = open_folder_guest(root_, false);
    Inspection in = inspect_guest(**fs, filesystems_);
    EXPECT_TRUE(in.predictable_nic_names);
    EXPECT_TRUE(in.biosdevname);
    EXPECT_EQ(eth_interfaces(in), std::vector<std::string>{"eth0"});
    // A netplan set-name counts too; ens3 and eth0x do not.
    put("/etc/netplan/50.yaml", "network:\n  ethernets:\n    id0:\n      set-name: eth1\n    ens3: {}\n    eth0x: {}\n");
    EXPECT_EQ(eth_interfaces(inspect_guest(**fs, filesystems_)), (std::vector<std::string>{"eth0", "eth1"}));
    (void)system(("rm -r " + root_ + "/etc/netplan").c_str());
    EXPECT_EQ(to_json(in)["predictable-nic-names"], true);
    EXPECT_NE(to_human(in).find("predictable NIC names: yes"), std::string::npos);
  }
  FixupPlan p = plan(true);
  EXPECT_NE(text(p, "/boot/grub2/grub.cfg").find("linux /vmlinuz-5.14.0 root=UUID=x ro net.ifnames=0 biosdevname=0\n"),
            std::string::npos);
  EXPECT_EQ(text(p, "/etc/default/grub"), "GRUB_CMDLINE_LINUX=\"rhgb quiet net.ifnames=0 biosdevname=0\"\n");
  EXPECT_TRUE(has_warning(p, "nic-names-pinned"));
  for (const auto& w : p.warnings) {
    if (w.code == "nic-names-pinned") {
      EXPECT_EQ(w.command, "");  // done, nothing for the user to do
    }
  }
  EXPECT_NE(to_json(p).dump().find("net.ifnames=0"), std::string::npos);
  // The second run: nothing to change, and the names are no longer predictable, so no note either.
  FixupPlan again = plan(false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  EXPECT_FALSE(has_warning(again, "nic-names-pinned"));
  auto fs = open_folder_guest(root_, false);
  Inspection in = inspect_guest(**fs, filesystems_);
  EXPECT_FALSE(in.predictable_nic_names);
  EXPECT_EQ(in.nic_names_disabled_by, "net.ifnames=0");
}

// An interrupted --in-place run can leave the menu with net.ifnames=0 and GRUB_CMDLINE_LINUX without it: the rerun
// must still see predictable naming (the next grub2-mkconfig would bring it back) and finish the job.
TEST_F(NicNamesTest, HalfDoneRunIsFinished) {
  guest();
  put("/boot/grub2/grub.cfg", "set default=0\nmenuentry 'L' {\n\tlinux /vmlinuz-5.14.0 root=UUID=x ro net.ifnames=0\n"
                              "\tinitrd /initramfs-5.14.0.img\n}\n");
  FixupPlan p = plan(false);
  EXPECT_EQ(text(p, "/etc/default/grub"), "GRUB_CMDLINE_LINUX=\"rhgb quiet net.ifnames=0\"\n");
  EXPECT_EQ(text(p, "/boot/grub2/grub.cfg"), "<unchanged>");
  // The same with grubenv's kernelopts, the source of RHEL 8 BLS entries, left behind.
  put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"rhgb quiet net.ifnames=0\"\n");
  put("/boot/grub2/grubenv", grubenv("kernelopts=root=UUID=u ro\n"));
  EXPECT_NE(text(plan(false), "/boot/grub2/grubenv").find("kernelopts=root=UUID=u ro net.ifnames=0\n"),
            std::string::npos);
  // Every source says it: naming is off, nothing left to do.
  put("/boot/grub2/grubenv", grubenv("kernelopts=root=UUID=u ro net.ifnames=0\n"));
  FixupPlan done = plan(false);
  EXPECT_FALSE(has_warning(done, "nic-names-pinned")) << to_human(done);
  EXPECT_EQ(text(done, "/etc/default/grub"), "<unchanged>");
}

// grub-mkconfig sources /etc/default/grub.d/*.cfg after /etc/default/grub (Ubuntu's cloud images keep the console
// there): they get the same edits. A GRUB_CMDLINE_LINUX the rewrite cannot touch does not keep the question open.
TEST_F(NicNamesTest, GrubDFilesAreEditedToo) {
  guest();
  put("/etc/default/grub.d/50-cloudimg-settings.cfg",
      "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=hvc0\"\n");
  put("/etc/default/grub.d/60-extra.cfg", "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX resume=/dev/xvda2\"\n");
  put("/etc/default/grub.d/README", "console=hvc0\n");  // not a .cfg: grub-mkconfig does not read it
  FixupPlan p = plan(true);
  EXPECT_EQ(text(p, "/etc/default/grub.d/50-cloudimg-settings.cfg"),
            "GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n");
  EXPECT_EQ(text(p, "/etc/default/grub.d/60-extra.cfg"),
            "GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX resume=/dev/xvda2 net.ifnames=0\"\n");
  EXPECT_EQ(text(p, "/etc/default/grub.d/README"), "<unchanged>");
  FixupPlan again = plan(false);
  EXPECT_TRUE(again.changes.empty()) << to_human(again);
  EXPECT_FALSE(has_warning(again, "nic-names-pinned")) << to_human(again);
  // A value holding its own quote cannot take the option: with every other line already saying it, naming is off.
  put("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"rhgb \\\"quiet\\\" net.ifnamesx=1\"\n");
  FixupPlan odd = plan(false);
  EXPECT_EQ(text(odd, "/etc/default/grub"), "<unchanged>");
  EXPECT_FALSE(has_warning(odd, "nic-names-pinned")) << to_human(odd);
}

TEST_F(NicNamesTest, NoRoomInGrubenvLeavesItToTheUser) {
  kvm_kernel("4.18.0");
  put("/usr/lib/udev/rules.d/80-net-setup-link.rules", "x\n");
  put("/etc/NetworkManager/system-connections/eth0.nmconnection", "[connection]\ninterface-name=eth0\n");
  put("/boot/loader/entries/m-4.18.0.conf", "title L\nversion 4.18.0\nlinux /vmlinuz-4.18.0\noptions $kernelopts\n");
  put("/boot/grub2/grubenv", grubenv("kernelopts=root=UUID=u ro " + std::string(965, 'x') + "\n"));
  FixupPlan p = plan(false);
  EXPECT_TRUE(has_warning(p, "grubenv-full"));
  bool told = false;
  for (const auto& w : p.warnings)
    if (w.code == "nic-names-pinned") told = w.command == "grubby --update-kernel=ALL --args=\"net.ifnames=0\"";
  EXPECT_TRUE(told) << to_human(p);
}

TEST_F(NicNamesTest, LeftAloneWhenNothingWouldBreak) {
  // A config that names no eth<N>.
  guest(false);
  EXPECT_FALSE(has_warning(plan(false), "nic-names-pinned"));
  EXPECT_EQ(text(plan(false), "/etc/default/grub"), "<unchanged>");
  (void)system(("rm -rf " + root_ + "/etc/sysconfig").c_str());
  // --no-network.
  guest();
  FixupOptions o;
  o.network = NetworkMode::kNone;
  FixupPlan p = plan(false, o);
  EXPECT_EQ(text(p, "/etc/default/grub"), "<unchanged>");
  EXPECT_FALSE(has_warning(p, "nic-names-pinned"));
  // Slot naming masked by an empty rule of the same name in /etc.
  put("/etc/udev/rules.d/80-net-setup-link.rules", "");
  EXPECT_EQ(text(plan(false), "/boot/grub2/grub.cfg"), "<unchanged>");
  (void)system(("rm " + root_ + "/etc/udev/rules.d/80-net-setup-link.rules").c_str());
  EXPECT_NE(text(plan(false), "/boot/grub2/grub.cfg"), "<unchanged>");
  // ... or by 99-default.link linked to /dev/null.
  (void)system(("mkdir -p " + root_ + "/etc/systemd/network && ln -s /dev/null " + root_ +
                "/etc/systemd/network/99-default.link")
                   .c_str());
  EXPECT_EQ(text(plan(false), "/boot/grub2/grub.cfg"), "<unchanged>");
  auto fs = open_folder_guest(root_, false);
  EXPECT_EQ(inspect_guest(**fs, filesystems_).nic_names_disabled_by, "/etc/systemd/network/99-default.link");
  (void)system(("rm " + root_ + "/etc/systemd/network/99-default.link").c_str());
  // No systemd slot-naming rule at all (SL5, upstart Ubuntu).
  (void)system(("rm -rf " + root_ + "/usr/lib/udev").c_str());
  EXPECT_EQ(text(plan(false), "/boot/grub2/grub.cfg"), "<unchanged>");
}

#ifdef VDKIT_GUESTS_DIR
// The test guest trees read through the folder implementation.
TEST(GuestTrees, InspectSl5Folder) {
  auto fs = open_folder_guest(std::string(VDKIT_GUESTS_DIR) + "/sl5/root", false);
  ASSERT_TRUE(fs.ok());
  Inspection in = inspect_guest(**fs, {});
  EXPECT_EQ(in.os.distro, "scientificlinux");
  ASSERT_EQ(in.boot_loaders.size(), 1u);  // grub.conf and its menu.lst link are one config
  EXPECT_EQ(in.boot_loaders[0].kind, "grub-legacy");
  ASSERT_EQ(in.kernels.size(), 2u);
  EXPECT_TRUE(in.kernels[1].xen_only);
  EXPECT_EQ(in.kernels[0].drivers["virtio_blk"], "module");
}
#endif

}  // namespace
}  // namespace vdkit::fixups
