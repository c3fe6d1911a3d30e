// The XFS reader against the kernel's own view (v5; needs root and loop devices): after the kernel wrote fragmented
// files (btree forks of one and two levels), sparse and preallocated (unwritten) files, a remote symbolic link, hard
// links and extended attributes (local, remote values, a node-form attribute fork), every path the kernel shows
// through a `ro,norecovery` loop mount has the same inode number, type, mode, owner, link count, size, times,
// device number, content, link target, directory entries and attributes in the reader. And a log left dirty by a
// shutdown is reported, never replayed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/xfs/xfs_images_test.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {
namespace {

namespace fs = std::filesystem;

bool can_run() {
  return geteuid() == 0 && access("/dev/loop-control", W_OK) == 0 &&
         test::run("PATH=$PATH:/usr/sbin command -v mkfs.xfs && command -v xfs_io && command -v setfattr") == 0 &&
         test::run("grep -qw xfs /proc/filesystems") == 0;
}

class XfsKernel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!can_run()) GTEST_SKIP() << "needs root, loop devices, the kernel's XFS, xfsprogs and attr";
    char tmpl[] = "/tmp/vdkit-xfs-kernel.XXXXXX";
    dir_ = mkdtemp(tmpl);
    image_ = dir_ + "/img";
    mnt_ = dir_ + "/mnt";
    fs::create_directories(mnt_);
    std::string log;
    ASSERT_EQ(testimg::make_image(testimg::base_model(false), image_, dir_ + "/src", GetParam(), 128, &log), 0) << log;
  }
  void TearDown() override {
    if (mounted_) test::run("umount " + mnt_);
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void mount(const std::string& opts) {
    std::string out;
    ASSERT_EQ(test::run("mount -t xfs -o loop,nouuid," + opts + " " + image_ + " " + mnt_, &out), 0) << out;
    mounted_ = true;
  }
  void umount() {
    ASSERT_EQ(test::run("umount " + mnt_), 0);
    mounted_ = false;
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run("cd " + mnt_ + " && " + cmd, &out), 0) << cmd << "\n" << out;
  }
  std::shared_ptr<XfsTree> open() {
    auto dev = open_image(image_);
    EXPECT_TRUE(dev.ok());
    auto t = XfsTree::Open(std::shared_ptr<BlockDevice>(std::move(*dev)), "test image");
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? *t : nullptr;
  }
  std::string dir_, image_, mnt_;
  bool mounted_ = false;
};

// Compares one path (and below it) between the kernel's mount and the reader.
void compare(XfsTree& t, const std::string& host, const std::string& guest, uint64_t ino, int& count) {
  SCOPED_TRACE(guest);
  ++count;
  struct stat k;
  ASSERT_EQ(lstat(host.c_str(), &k), 0);
  auto st = t.stat(ino);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->ino, k.st_ino);
  EXPECT_EQ(st->mode, k.st_mode);
  EXPECT_EQ(st->uid, k.st_uid);
  EXPECT_EQ(st->gid, k.st_gid);
  EXPECT_EQ(st->nlink, k.st_nlink);
  EXPECT_EQ(st->size, static_cast<uint64_t>(k.st_size));
  EXPECT_EQ(st->blocks, static_cast<uint64_t>(k.st_blocks));
  EXPECT_EQ(st->mtime.tv_sec, k.st_mtim.tv_sec);
  EXPECT_EQ(st->mtime.tv_nsec, k.st_mtim.tv_nsec);
  EXPECT_EQ(st->ctime.tv_sec, k.st_ctim.tv_sec);
  if (S_ISCHR(k.st_mode) || S_ISBLK(k.st_mode)) {
    EXPECT_EQ(st->rdev, k.st_rdev);
  }
  // Attributes: the same names and values.
  char names[65536];
  ssize_t n = llistxattr(host.c_str(), names, sizeof names);
  ASSERT_GE(n, 0);
  std::set<std::string> theirs, ours;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(names + i)) + 1) theirs.insert(names + i);
  std::vector<std::string> list;
  ASSERT_TRUE(t.list_xattrs(ino, list).ok());
  ours.insert(list.begin(), list.end());
  EXPECT_EQ(ours, theirs);
  for (const auto& name : theirs) {
    std::string v(65536, '\0');
    ssize_t len = lgetxattr(host.c_str(), name.c_str(), v.data(), v.size());
    ASSERT_GE(len, 0);
    v.resize(static_cast<size_t>(len));
    auto mine = t.get_xattr(ino, name);
    ASSERT_TRUE(mine.ok()) << name << ": " << mine.status().message();
    EXPECT_TRUE(*mine == v) << name;
  }
  if (S_ISREG(k.st_mode)) {
    std::ifstream f(host, std::ios::binary);
    std::string want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string got(want.size(), '\0');
    auto r = t.read(ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(*r, want.size());
    EXPECT_TRUE(got == want) << "content differs";
  } else if (S_ISLNK(k.st_mode)) {
    char buf[4096];
    ssize_t len = readlink(host.c_str(), buf, sizeof buf);
    ASSERT_GE(len, 0);
    auto target = t.read_link(ino);
    ASSERT_TRUE(target.ok()) << target.status().message();
    EXPECT_EQ(*target, std::string(buf, static_cast<size_t>(len)));
  } else if (S_ISDIR(k.st_mode)) {
    std::map<std::string, uint64_t> kernel_entries, reader_entries;
    for (const auto& e : fs::directory_iterator(host)) {
      struct stat es;
      ASSERT_EQ(lstat(e.path().c_str(), &es), 0);
      kernel_entries[e.path().filename().string()] = es.st_ino;
    }
    std::vector<TreeEntry> entries;
    ASSERT_TRUE(t.read_dir(ino, entries).ok());
    for (const auto& e : entries) reader_entries[e.name] = e.ino;
    ASSERT_EQ(reader_entries, kernel_entries);
    for (const auto& [name, child] : reader_entries)
      compare(t, host + "/" + name, guest == "/" ? "/" + name : guest + "/" + name, child, count);
  }
}

TEST_P(XfsKernel, EverythingTheKernelShows) {
  mount("rw");
  // Punching every other 4 KiB makes thousands of extents: a bmbt of one level on 4 KiB blocks, two on 1 KiB.
  std::string punch;
  for (int i = 0; i < 3000; ++i) punch += " -c 'fpunch " + std::to_string(i * 8 + 4) + "k 4k'";
  sh("xfs_io -f -c 'pwrite -q -S 0x5a 0 24m' -c fsync" + punch + " frag");
  sh("xfs_io -f -c 'pwrite -q -S 0x41 1m 4k' -c 'truncate 3m' sparse");
  sh("xfs_io -f -c 'falloc 0 1m' -c 'pwrite -q -S 0x42 256k 4k' prealloc");
  sh("ln -s " + std::string(900, 'r') + " links/remote && ln etc/hostname etc/hostname.link");
  sh("setfattr -n user.small -v hello etc/hostname && setfattr -n user.big -v " + std::string(3000, 'v') +
     " etc/hostname && setfattr -n trusted.t -v root-only etc/fstab");
  sh("touch manyattrs && for i in $(seq 1 300); do setfattr -n user.attribute-number-$i -v value-$i manyattrs; done");
  umount();
  std::string fmt = test::output_of("PATH=$PATH:/usr/sbin xfs_db -r -c 'path /frag' -c 'print core.format' " + image_);
  EXPECT_NE(fmt.find("btree"), std::string::npos) << fmt;

  mount("ro,norecovery");
  auto t = open();
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->log_dirty());
  int count = 0;
  compare(*t, mnt_, "/", t->root_ino(), count);
  EXPECT_GT(count, 3400);
  umount();
}

TEST_P(XfsKernel, ADirtyLogIsReportedNotReplayed) {
  mount("rw");
  sh("echo new > etc/after-shutdown && sync && xfs_io -x -c 'shutdown -f' .");
  umount();
  std::string before = test::output_of("sha256sum < " + image_);
  auto t = open();
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->log_dirty());
  auto w = t->warnings();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].rfind(kDirtyLogWarning, 0), 0u) << w[0];
  EXPECT_NE(t->state().find("log dirty"), std::string::npos);
  EXPECT_EQ(test::output_of("sha256sum < " + image_), before);
  // The kernel agrees: a read-only mount that may replay needs to, and refuses on a read-only device.
  std::string out;
  EXPECT_NE(test::run("losetup -r -f --show " + image_ + " > " + dir_ + "/loopdev", &out), 1);
  std::string loop = test::output_of("cat " + dir_ + "/loopdev");
  loop.erase(loop.find_last_not_of('\n') + 1);
  if (!loop.empty()) {
    EXPECT_NE(test::run("mount -t xfs -o ro,nouuid " + loop + " " + mnt_, &out), 0) << "the kernel found no log to replay";
    test::run("umount " + mnt_ + " 2>/dev/null; losetup -d " + loop);
  }
}

INSTANTIATE_TEST_SUITE_P(V5, XfsKernel, ::testing::Values("-m crc=1 -b size=4096", "-m crc=1 -b size=1024"),
                         [](const auto& info) { return std::string(info.index == 0 ? "b4096" : "b1024"); });

}  // namespace
}  // namespace vdkit::guestfs::xfs
