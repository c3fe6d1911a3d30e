// Folder GuestFs: guest-absolute symlinks stay inside the guest root; the mount table routes by longest mount point.
#include "guestfs/guest_fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>

namespace vdkit::guestfs {
namespace {

class FolderTest : public testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vdkit-guestfs-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    root_ = d;
    ASSERT_EQ(mkdir((root_ + "/etc").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/boot").c_str(), 0755), 0);
    std::ofstream(root_ + "/etc/fstab") << "guest fstab\n";
    // Absolute and escaping links must resolve inside the guest.
    ASSERT_EQ(symlink("/etc/fstab", (root_ + "/boot/abs").c_str()), 0);
    ASSERT_EQ(symlink("../../../../../../etc/fstab", (root_ + "/boot/up").c_str()), 0);
    ASSERT_EQ(symlink("loop", (root_ + "/boot/loop").c_str()), 0);
  }
  void TearDown() override { (void)system(("rm -rf " + root_).c_str()); }
  std::string root_;
};

TEST_F(FolderTest, SymlinksStayInTheGuest) {
  auto fs = open_folder_guest(root_, false);
  ASSERT_TRUE(fs.ok());
  EXPECT_EQ(*(*fs)->read_file("/boot/abs"), "guest fstab\n");
  EXPECT_EQ(*(*fs)->read_file("/boot/up"), "guest fstab\n");
  auto loop = (*fs)->read_file("/boot/loop");
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), ELOOP);
  EXPECT_EQ((*fs)->read_file("/nope").status().code(), ENOENT);
  EXPECT_EQ((*fs)->read_file("/etc/fstab", 3).status().code(), EFBIG);
  EXPECT_EQ((*fs)->write_file("/etc/fstab", "x").code(), EROFS);
  EXPECT_EQ((*fs)->list_dir("/boot"), (std::vector<std::string>{"abs", "loop", "up"}));
}

TEST_F(FolderTest, WritesKeepTheInode) {
  auto fs = open_folder_guest(root_, true);
  ASSERT_TRUE(fs.ok());
  struct stat before, after;
  ASSERT_EQ(stat((root_ + "/etc/fstab").c_str(), &before), 0);
  ASSERT_TRUE((*fs)->write_file("/boot/abs", "new\n").ok());  // through the link
  ASSERT_EQ(stat((root_ + "/etc/fstab").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(*(*fs)->read_file("/etc/fstab"), "new\n");
  ASSERT_TRUE((*fs)->write_file("/etc/new", "n").ok());
  EXPECT_TRUE((*fs)->is_file("/etc/new"));
}

TEST_F(FolderTest, MountTableRoutes) {
  MountedGuestFs m;
  m.add("/", *open_folder_guest(root_, false));
  m.add("/boot", *open_folder_guest(root_ + "/etc", false));
  EXPECT_EQ(*m.read_file("/boot/fstab"), "guest fstab\n");
  EXPECT_EQ(*m.read_file("/etc/fstab"), "guest fstab\n");
  EXPECT_FALSE(m.is_file("/boot/abs"));
  EXPECT_EQ(normalize_guest_path("//a/./b/../c/"), "/a/c");
  EXPECT_EQ(normalize_guest_path("../.."), "/");
  EXPECT_EQ(guest_dirname("/etc/fstab"), "/etc");
  // Neither a folder nor a table spanning several devices can say which blocks are free.
  EXPECT_EQ(m.free_space(), nullptr);
  EXPECT_EQ((*open_folder_guest(root_, false))->free_space(), nullptr);
  // But both can say how much room a new file has: the folder from statvfs, the table from the file system it
  // routes to.
  struct statvfs v;
  ASSERT_EQ(statvfs(root_.c_str(), &v), 0);
  auto folder = (*open_folder_guest(root_, false))->free_bytes_at("/boot/new");
  ASSERT_TRUE(folder.has_value());
  EXPECT_GT(*folder, 0u);
  EXPECT_LE(*folder, static_cast<uint64_t>(v.f_blocks) * v.f_frsize);
  EXPECT_TRUE(m.free_bytes_at("/boot/new").has_value());
}

}  // namespace
}  // namespace vdkit::guestfs
