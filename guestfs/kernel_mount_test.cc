// KernelMount against the host kernel: writes land in the overlay and never in the source, a refused mount and a
// killed process leave no loop device, mount or private folder. Needs root, /dev/fuse, loop devices, mkfs.xfs.
#include "guestfs/kernel_mount.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "blockcore/layers/overlay.h"
#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit::guestfs {
namespace {

namespace fs = std::filesystem;

// mkfs.xfs refuses file systems under 300 MB unless it believes it runs under xfstests.
const std::string kMkfsXfs = "TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 PATH=$PATH:/sbin:/usr/sbin mkfs.xfs ";

bool can_run() {
  return geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0 && access("/dev/loop-control", R_OK | W_OK) == 0 &&
         test::run("PATH=$PATH:/sbin:/usr/sbin command -v mkfs.xfs") == 0;
}

// Every loop device whose backing file lies under dir, and every mount under it.
int leftovers_under(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::ifstream f(e.path() / "loop" / "backing_file");
    std::string b;
    if (std::getline(f, b) && b.rfind(dir, 0) == 0) ++n;
  }
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (line.find(" " + dir) != std::string::npos) ++n;
  if (fs::exists(dir)) ++n;
  return n;
}

class KernelMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!can_run()) GTEST_SKIP() << "needs root, /dev/fuse, loop devices and mkfs.xfs";
    image_ = test::temp_path("kmount", "img");
    ASSERT_EQ(test::run("truncate -s 64M " + image_ + " && " + kMkfsXfs + "-q -f " + image_), 0);
    before_ = test::output_of("sha256sum < " + image_);
  }
  void TearDown() override {
    if (!image_.empty()) {
      EXPECT_EQ(test::output_of("sha256sum < " + image_), before_) << "the source was changed";
      unlink(image_.c_str());
    }
  }
  std::shared_ptr<BlockDevice> overlay() {
    auto src = open_image(image_);
    EXPECT_TRUE(src.ok()) << src.status().message();
    return std::shared_ptr<BlockDevice>(make_memory_overlay(std::shared_ptr<BlockDevice>(std::move(*src))));
  }
  std::string image_, before_;
};

TEST_F(KernelMountTest, WritesLandInTheOverlayAndEverythingGoes) {
  auto dev = overlay();
  KernelMountOptions o;
  o.fs_type = "xfs";
  o.options = {"nouuid"};
  o.writable = true;
  o.what = "xfs test image";
  std::string dir;
  {
    auto km = KernelMount::Mount(dev, o);
    ASSERT_TRUE(km.ok()) << km.status().message();
    dir = (*km)->private_dir();
    EXPECT_EQ((*km)->loop_device().rfind("/dev/loop", 0), 0u);
    auto gfs = (*km)->open_guest_fs();
    ASSERT_TRUE(gfs.ok()) << gfs.status().message();
    EXPECT_NE((*gfs)->describe().find("xfs test image"), std::string::npos);
    ASSERT_TRUE((*gfs)->write_file("/hello", "from the kernel\n").ok());
    EXPECT_EQ(*(*gfs)->read_file("/hello"), "from the kernel\n");
    EXPECT_GT(leftovers_under(dir), 0);
    Status st = (*km)->Unmount();
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE((*km)->Unmount().ok());  // idempotent
  }
  EXPECT_EQ(leftovers_under(dir), 0);

  // The overlay holds the file: mount it again read-only, without replaying anything.
  o.writable = false;
  o.options = {"nouuid", "norecovery"};
  auto km = KernelMount::Mount(dev, o);
  ASSERT_TRUE(km.ok()) << km.status().message();
  auto gfs = (*km)->open_guest_fs();
  ASSERT_TRUE(gfs.ok());
  EXPECT_EQ(*(*gfs)->read_file("/hello"), "from the kernel\n");
  EXPECT_EQ((*gfs)->write_file("/other", "x").code(), EROFS);
  dir = (*km)->private_dir();
  ASSERT_TRUE((*km)->Unmount().ok());
  EXPECT_EQ(leftovers_under(dir), 0);
}

TEST_F(KernelMountTest, ARefusedMountLeavesNothing) {
  auto before = test::output_of("ls /run/vdkit");
  KernelMountOptions o;
  o.fs_type = "ext4";  // not what the image holds
  o.what = "xfs as ext4";
  auto km = KernelMount::Mount(overlay(), o);
  ASSERT_FALSE(km.ok());
  EXPECT_NE(km.status().message().find("could not mount xfs as ext4"), std::string::npos) << km.status().message();
  EXPECT_EQ(test::output_of("ls /run/vdkit"), before);
  EXPECT_EQ(leftovers_under("/run/vdkit/kmount."), 0);
}

TEST_F(KernelMountTest, ReadOnlyDeviceCannotMountReadWrite) {
  auto src = open_image(image_);
  ASSERT_TRUE(src.ok());
  KernelMountOptions o;
  o.fs_type = "xfs";
  o.writable = true;
  auto km = KernelMount::Mount(std::shared_ptr<BlockDevice>(std::move(*src)), o);
  ASSERT_FALSE(km.ok());
  EXPECT_EQ(km.status().code(), EROFS);
}

TEST_F(KernelMountTest, ATerminatedProcessTearsDown) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  auto dev = overlay();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    KernelMountOptions o;
    o.fs_type = "xfs";
    o.options = {"nouuid"};
    o.writable = true;
    auto km = KernelMount::Mount(dev, o);
    std::string msg = km.ok() ? (*km)->private_dir() : "ERR " + km.status().message();
    msg += "\n";
    if (write(pipefd[1], msg.data(), msg.size()) < 0) _exit(3);
    if (km.ok()) {
      auto gfs = (*km)->open_guest_fs();
      if (gfs.ok()) (void)(*gfs)->write_file("/busy", "being written when the signal came");
    }
    for (;;) pause();
  }
  close(pipefd[1]);
  std::string dir;
  char c;
  while (read(pipefd[0], &c, 1) == 1 && c != '\n') dir += c;
  close(pipefd[0]);
  ASSERT_EQ(dir.rfind("/run/vdkit/kmount.", 0), 0u) << dir;
  usleep(200 * 1000);
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  // The lazily detached file system lets go of its loop device when its last I/O has failed.
  for (int i = 0; i < 50 && leftovers_under(dir) > 0; ++i) usleep(100 * 1000);
  EXPECT_EQ(leftovers_under(dir), 0) << test::output_of("grep " + dir + " /proc/self/mountinfo; losetup -a");
}

}  // namespace
}  // namespace vdkit::guestfs
