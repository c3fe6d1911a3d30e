// The subvolume a Btrfs guest boots, as its kernel command lines and fstab options name it.
#include "fixups/btrfs_root.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "fixups/inspect.h"

namespace vdkit::fixups {
namespace {

TEST(BtrfsRoot, SubvolInOptions) {
  EXPECT_EQ(subvol_in_options("defaults,subvol=@"), "@");
  EXPECT_EQ(subvol_in_options("subvol=/@/.snapshots/1/snapshot,compress=zstd"), "/@/.snapshots/1/snapshot");
  EXPECT_EQ(subvol_in_options("subvol=@,subvolid=256"), "256") << "the kernel checks subvolid first";
  EXPECT_EQ(subvol_in_options("defaults,noatime"), std::nullopt);
  EXPECT_EQ(subvol_in_options(""), std::nullopt);
}

TEST(BtrfsRoot, SubvolInRootflags) {
  EXPECT_EQ(subvol_in_rootflags("linux /boot/vmlinuz root=UUID=x rootflags=subvol=@/.snapshots/1/snapshot quiet"),
            "@/.snapshots/1/snapshot");
  EXPECT_EQ(subvol_in_rootflags("GRUB_CMDLINE_LINUX=\"rootflags=compress=zstd,subvolid=258\"\n"), "258");
  EXPECT_EQ(subvol_in_rootflags("options root=/dev/vda2 rootflags=noatime\nlinux x rootflags=subvol=@ ro"), "@")
      << "the first rootflags that names a subvolume";
  EXPECT_EQ(subvol_in_rootflags("myrootflags=subvol=@ noroot"), std::nullopt) << "only a word of its own";
  EXPECT_EQ(subvol_in_rootflags("root=/dev/xvda2 ro"), std::nullopt);
}

// GRUB on Btrfs names files from the top level: /@/boot/vmlinuz is /boot/vmlinuz of the root subvolume @.
TEST(BtrfsRoot, GrubTopLevelPathsResolveInTheRootSubvolume) {
  char tmpl[] = "/tmp/vdkit-bootpath.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string root = tmpl;
  std::filesystem::create_directories(root + "/boot");
  std::ofstream(root + "/boot/vmlinuz-5.4.0") << "kernel";
  auto fs = open_folder_guest(root, false);
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ(boot_path(**fs, "/@/boot/vmlinuz-5.4.0"), "/boot/vmlinuz-5.4.0");
  EXPECT_EQ(boot_path(**fs, "/.snapshots/1/snapshot/boot/vmlinuz-5.4.0"), "/boot/vmlinuz-5.4.0");
  EXPECT_EQ(boot_path(**fs, "/vmlinuz-5.4.0"), "/boot/vmlinuz-5.4.0") << "a separate /boot, as before";
  EXPECT_EQ(boot_path(**fs, "/@/boot/vmlinuz-missing"), "/@/boot/vmlinuz-missing") << "only files that exist";
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace vdkit::fixups
