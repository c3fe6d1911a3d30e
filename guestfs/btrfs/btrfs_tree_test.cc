// The Btrfs reader against what was put into images: mkfs.btrfs --rootdir trees, and (as root) images populated
// through the kernel with subvolumes, snapshots, a non-default default subvolume, compression and DUP metadata,
// compared file by file with the source, a `ro,nologreplay` kernel mount and `btrfs restore`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/btrfs/btrfs_tree.h"

namespace vdkit::guestfs::btrfs {
namespace {

namespace fs = std::filesystem;
const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

bool have(const std::string& tool) { return test::run(kPath + "command -v " + tool) == 0; }

std::string read_host(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string read_tree(FileTree& t, uint64_t ino, uint64_t size) {
  std::string s(size, '\0');
  size_t done = 0;
  while (done < size) {
    // Odd-sized reads at odd offsets, so extent and sector boundaries fall inside requests.
    size_t want = std::min<size_t>(size - done, 77777);
    auto n = t.read(ino, done, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()) + done, want));
    EXPECT_TRUE(n.ok()) << n.status().message();
    if (!n.ok() || *n == 0) break;
    done += *n;
  }
  s.resize(done);
  return s;
}

struct CompareOptions {
  bool owners = true;  // btrfs restore cannot keep owners without -m as root
  bool xattrs = true;
  bool times = false;
  bool host_subset = false;  // the host side may lack entries (btrfs restore skips device nodes, fifos, snapshots)
};

// Walks the host directory and the tree together; every difference is a test failure naming the path. Returns the
// number of entries compared.
size_t compare(FileTree& t, uint64_t ino, const std::string& host, const std::string& rel, const CompareOptions& o) {
  size_t count = 1;
  struct stat hs;
  if (lstat(host.c_str(), &hs) != 0) {
    ADD_FAILURE() << rel << ": missing on the host side";
    return count;
  }
  auto st = t.stat(ino);
  if (!st.ok()) {
    ADD_FAILURE() << rel << ": " << st.status().message();
    return count;
  }
  EXPECT_EQ(st->mode & S_IFMT, hs.st_mode & S_IFMT) << rel;
  if (!S_ISLNK(hs.st_mode)) {
    EXPECT_EQ(st->mode, hs.st_mode) << rel;
  }
  if (o.owners) {
    EXPECT_EQ(st->uid, hs.st_uid) << rel;
    EXPECT_EQ(st->gid, hs.st_gid) << rel;
  }
  if (o.times && !S_ISLNK(hs.st_mode)) {
    EXPECT_EQ(st->mtime.tv_sec, hs.st_mtim.tv_sec) << rel;
  }
  if (S_ISREG(hs.st_mode)) {
    EXPECT_EQ(st->size, static_cast<uint64_t>(hs.st_size)) << rel;
    EXPECT_TRUE(read_tree(t, ino, st->size) == read_host(host)) << rel << ": contents differ";
  } else if (S_ISLNK(hs.st_mode)) {
    auto target = t.read_link(ino);
    EXPECT_TRUE(target.ok()) << rel;
    if (target.ok()) {
      EXPECT_EQ(*target, fs::read_symlink(host).string()) << rel;
    }
  } else if (S_ISCHR(hs.st_mode) || S_ISBLK(hs.st_mode)) {
    EXPECT_EQ(st->rdev, hs.st_rdev) << rel;
  }
  if (o.xattrs && !S_ISLNK(hs.st_mode)) {
    char names[4096];
    ssize_t n = llistxattr(host.c_str(), names, sizeof names);
    std::set<std::string> want;
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(names + i)) + 1)
      if (std::string(names + i).rfind("user.", 0) == 0) want.insert(names + i);
    std::vector<std::string> got_list;
    EXPECT_TRUE(t.list_xattrs(ino, got_list).ok()) << rel;
    std::set<std::string> got;
    for (auto& g : got_list)
      if (g.rfind("user.", 0) == 0) got.insert(g);
    EXPECT_EQ(got, want) << rel;
    for (const auto& name : want) {
      char v[4096];
      ssize_t vn = lgetxattr(host.c_str(), name.c_str(), v, sizeof v);
      auto gv = t.get_xattr(ino, name);
      EXPECT_TRUE(gv.ok() && *gv == std::string(v, static_cast<size_t>(std::max<ssize_t>(vn, 0)))) << rel << " " << name;
    }
  }
  if (S_ISDIR(hs.st_mode)) {
    std::vector<TreeEntry> entries;
    Status s = t.read_dir(ino, entries);
    EXPECT_TRUE(s.ok()) << rel << ": " << s.message();
    std::set<std::string> got, want;
    for (const auto& e : entries) got.insert(e.name);
    for (const auto& e : fs::directory_iterator(host)) want.insert(e.path().filename().string());
    if (o.host_subset) {
      for (const auto& w : want) EXPECT_TRUE(got.count(w)) << rel << "/" << w << " is missing from the tree";
    } else {
      EXPECT_EQ(got, want) << rel;
    }
    for (const auto& e : entries) {
      if (!want.count(e.name)) continue;
      auto looked = t.lookup(ino, e.name);
      EXPECT_TRUE(looked.ok() && *looked == e.ino) << rel << "/" << e.name << ": lookup disagrees with read_dir";
      if (e.type) {
        auto est = t.stat(e.ino);
        if (est.ok()) {
          EXPECT_EQ(e.type, est->mode & S_IFMT) << rel << "/" << e.name;
        }
      }
      count += compare(t, e.ino, host + "/" + e.name, rel + "/" + e.name, o);
    }
  }
  return count;
}

class BtrfsImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("mkfs.btrfs")) GTEST_SKIP() << "mkfs.btrfs (btrfs-progs) is not installed";
    char tmpl[] = "/tmp/vdkit-btrfs.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/fs.img";
    mnt_ = dir_ + "/mnt";
    fs::create_directories(mnt_);
  }
  void TearDown() override {
    if (mounted_) (void)test::run("umount " + mnt_);
    if (!dir_.empty()) (void)test::run("rm -rf " + dir_);
  }
  void sh(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(test::run(kPath + "set -e; " + cmd, &out), 0) << cmd << "\n" << out;
  }
  bool root_with_loop() { return geteuid() == 0 && access("/dev/loop-control", F_OK) == 0; }
  void mount(const std::string& opts) {
    sh("mount -t btrfs -o loop," + opts + " " + img_ + " " + mnt_);
    mounted_ = true;
  }
  void umount() {
    sh("umount " + mnt_);
    mounted_ = false;
  }
  Result<std::shared_ptr<BtrfsTree>> open(const std::string& subvol = "") {
    auto dev = open_image(img_);
    if (!dev.ok()) return dev.status();
    return BtrfsTree::open(std::shared_ptr<BlockDevice>(std::move(*dev)), "test image", subvol);
  }
  // A tree with what --rootdir and the kernel both can make: inline and regular files, a sparse file, links,
  // modes, owners and xattrs.
  void make_source(const std::string& src) {
    sh("mkdir -p " + src + "/etc/sub/deeper " + src + "/var/empty " + src + "/bin");
    sh("printf 'UUID=x / btrfs defaults 0 0\\n' > " + src + "/etc/fstab");
    sh("head -c 3000 /dev/urandom > " + src + "/etc/inline-random");
    sh("yes 'compressible line of text' | head -c 700000 > " + src + "/etc/sub/compressible");
    sh("head -c 1500000 /dev/urandom > " + src + "/var/big-random");
    sh("truncate -s 5M " + src + "/var/sparse && printf tail | dd of=" + src +
       "/var/sparse bs=1 seek=3000000 conv=notrunc 2>/dev/null");
    sh("printf 'x' > " + src + "/etc/sub/deeper/one-byte && : > " + src + "/var/empty-file");
    sh("ln -s ../etc/fstab " + src + "/bin/fstab-link && ln -s /" + std::string(200, 'a') + " " + src + "/bin/long-link");
    sh("chmod 0751 " + src + "/etc/sub && chmod 4755 " + src + "/etc/sub/deeper/one-byte && chmod 0600 " + src + "/var/big-random");
    if (geteuid() == 0) sh("chown 1234:5678 " + src + "/etc/fstab && chown -h 42:43 " + src + "/bin/fstab-link");
    (void)test::run("setfattr -n user.colour -v blue " + src + "/etc/fstab");
  }
  std::string dir_, img_, mnt_;
  bool mounted_ = false;
};

TEST_F(BtrfsImage, RootdirImageMatchesItsSource) {
  std::string src = dir_ + "/src";
  make_source(src);
  sh("truncate -s 160M " + img_ + " && mkfs.btrfs -q -r " + src + " " + img_);
  auto t = open();
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->shown().id, kFsTreeObjectid);
  EXPECT_GT(compare(**t, (*t)->root_ino(), src, "", {geteuid() == 0, false, false}), 12u);
  EXPECT_TRUE((*t)->warnings().empty());
}

TEST_F(BtrfsImage, ChecksumTypes) {
  std::string src = dir_ + "/src";
  make_source(src);
  for (std::string csum : {"crc32c", "xxhash", "sha256", "blake2"}) {
    SCOPED_TRACE(csum);
    sh("rm -f " + img_ + " && truncate -s 160M " + img_ + " && mkfs.btrfs -q --csum " + csum + " -r " + src + " " + img_);
    auto t = open();
    ASSERT_TRUE(t.ok()) << t.status().message();
    compare(**t, (*t)->root_ino(), src, "", {geteuid() == 0, false, false});
  }
}

// Explicit hole extents (without no-holes), big nodes, mixed block groups, single metadata.
TEST_F(BtrfsImage, FeatureVariants) {
  std::string src = dir_ + "/src";
  make_source(src);
  for (std::string opts : {"-O ^no-holes", "-n 65536", "-M", "-m single -d single", "-R ^free-space-tree"}) {
    SCOPED_TRACE(opts);
    sh("rm -f " + img_ + " && truncate -s 160M " + img_ + " && mkfs.btrfs -q " + opts + " -r " + src + " " + img_);
    auto t = open();
    ASSERT_TRUE(t.ok()) << t.status().message();
    compare(**t, (*t)->root_ino(), src, "", {geteuid() == 0, false, false});
    std::vector<std::pair<uint64_t, uint64_t>> free;
    EXPECT_TRUE((*t)->free_space()->unused_ranges(free).ok());
  }
}

// Through the kernel: subvolumes, snapshots, a default subvolume that is not the top level, compression, DUP.
TEST_F(BtrfsImage, KernelImageMatchesKernelMountAndRestore) {
  if (!root_with_loop()) GTEST_SKIP() << "needs root and loop devices to populate the image through the kernel";
  std::string src = dir_ + "/src";
  make_source(src);
  sh("truncate -s 300M " + img_ + " && mkfs.btrfs -q -m dup -d single " + img_);
  mount("compress=zlib");
  sh("btrfs -q subvolume create " + mnt_ + "/@ && btrfs -q subvolume create " + mnt_ + "/@/home");
  sh("cp -a " + src + "/. " + mnt_ + "/@/");
  sh("mkdir -p " + mnt_ + "/@/var/lzo " + mnt_ + "/@/var/zstd && btrfs property set " + mnt_ + "/@/var/lzo compression lzo"
     " && btrfs property set " + mnt_ + "/@/var/zstd compression zstd");
  for (std::string c : {"lzo", "zstd"}) {
    sh("yes 'lines for " + c + " compression' | head -c 900000 > " + mnt_ + "/@/var/" + c + "/text");
    sh("head -c 200000 /dev/urandom > " + mnt_ + "/@/var/" + c + "/random");
    sh("printf 'small %s file that stays inline\\n' " + c + " > " + mnt_ + "/@/var/" + c + "/inline");
    sh("yes " + c + " | head -c 3000 > " + mnt_ + "/@/var/" + c + "/inline-compressed");
  }
  sh("mknod " + mnt_ + "/@/dev-tty7 c 4 7 && mkfifo " + mnt_ + "/@/fifo");
  sh("echo home > " + mnt_ + "/@/home/file && ln " + mnt_ + "/@/etc/fstab " + mnt_ + "/@/etc/fstab-hardlink");
  sh("mkdir -p " + mnt_ + "/@/.snapshots && btrfs -q subvolume snapshot -r " + mnt_ + "/@ " + mnt_ + "/@/.snapshots/1");
  sh("echo changed-after-snapshot > " + mnt_ + "/@/etc/fstab && rm " + mnt_ + "/@/var/big-random");
  sh("btrfs subvolume set-default " + mnt_ + "/@");
  umount();

  auto t = open();
  ASSERT_TRUE(t.ok()) << t.status().message();
  const Subvolume& shown = (*t)->shown();
  EXPECT_EQ(shown.path, "@");
  std::map<std::string, const Subvolume*> by_path;
  for (const auto& s : (*t)->subvolumes()) by_path[s.path] = &s;
  ASSERT_TRUE(by_path.count("@/home") && by_path.count("@/.snapshots/1"));
  EXPECT_TRUE(by_path["@/.snapshots/1"]->readonly);
  EXPECT_EQ(by_path["@/.snapshots/1"]->parent_uuid, shown.uuid);

  // Against the kernel's read-only view of the same subvolumes.
  mount("ro,rescue=nologreplay,subvolid=5");  // this kernel spells nologreplay as a rescue= option
  size_t n = compare(**t, (*t)->root_ino(), mnt_ + "/@", "", {});
  EXPECT_GT(n, 25u);
  auto snap = open("@/.snapshots/1");
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  compare(**snap, (*snap)->root_ino(), mnt_ + "/@/.snapshots/1", "/snap", {});
  auto by_id = open(std::to_string(by_path["@/home"]->id));
  ASSERT_TRUE(by_id.ok()) << by_id.status().message();
  compare(**by_id, (*by_id)->root_ino(), mnt_ + "/@/home", "/home", {});
  auto top = open("/");
  ASSERT_TRUE(top.ok()) << top.status().message();
  compare(**top, (*top)->root_ino(), mnt_, "/top", {});
  umount();

  // Against btrfs restore, which reads the image in userspace (contents, symlinks, xattrs; owners with -m).
  if (have("btrfs")) {
    std::string out;
    test::run(kPath + "mkdir " + dir_ + "/restore && btrfs restore -S -x -m -r " + std::to_string(shown.id) + " " + img_ +
                  " " + dir_ + "/restore",
              &out);
    SCOPED_TRACE(out);
    size_t restored = compare(**t, (*t)->root_ino(), dir_ + "/restore", "/restore", {true, true, false, true});
    EXPECT_GT(restored, 20u);
  }
}

// The unused ranges hold nothing anyone reads: filling them with garbage leaves `btrfs check` clean and every file
// the same; and they never include the superblock copies or the first MiB.
TEST_F(BtrfsImage, UnusedSpaceIsReallyUnused) {
  std::string src = dir_ + "/src";
  make_source(src);
  sh("truncate -s 300M " + img_ + " && mkfs.btrfs -q -r " + src + " " + img_);
  if (root_with_loop()) {
    // Free space inside block groups too: files written and some removed through the kernel.
    mount("");
    sh("head -c 20000000 /dev/urandom > " + mnt_ + "/gone && head -c 9000000 /dev/urandom > " + mnt_ + "/kept && sync");
    sh("rm " + mnt_ + "/gone && btrfs filesystem sync " + mnt_);
    umount();
  }
  auto t = open();
  ASSERT_TRUE(t.ok()) << t.status().message();
  std::vector<std::pair<uint64_t, uint64_t>> free;
  ASSERT_TRUE((*t)->free_space()->unused_ranges(free).ok());
  ASSERT_FALSE(free.empty());
  uint64_t total = 0, prev_end = 0;
  for (auto [off, len] : free) {
    EXPECT_GT(off, prev_end) << "sorted, neither overlapping nor touching";
    EXPECT_GE(off, kDeviceReserved);
    for (uint64_t m : kSuperMirrors) EXPECT_TRUE(off + len <= m || off >= m + kSuperSize) << "superblock copy at " << m;
    prev_end = off + len;
    total += len;
  }
  EXPECT_GT(total, 100u << 20);
  // Fill every unused range with 0xa5 and check the file system and its files.
  {
    int fd = ::open(img_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> junk(1 << 20, 0xa5);
    for (auto [off, len] : free)
      for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(junk.size(), len - done));
        ASSERT_EQ(pwrite(fd, junk.data(), n, static_cast<off_t>(off + done)), static_cast<ssize_t>(n));
        done += n;
      }
    close(fd);
  }
  if (have("btrfs")) {
    std::string out;
    EXPECT_EQ(test::run(kPath + "btrfs check --readonly " + img_, &out), 0) << out;
  }
  auto again = open();
  ASSERT_TRUE(again.ok()) << again.status().message();
  compare(**again, (*again)->root_ino(), src, "", {geteuid() == 0, false, false, true});
  if (root_with_loop()) {
    mount("ro,rescue=nologreplay");
    EXPECT_EQ(read_host(mnt_ + "/kept").size(), 9000000u);
    umount();
  }
}

// A crash after fsync leaves a log tree: reported, never replayed by the reader (it shows what a nologreplay mount
// shows), and the free-space map then offers only unallocated space.
TEST_F(BtrfsImage, LogTreeIsReportedNotReplayed) {
  if (!root_with_loop()) GTEST_SKIP() << "needs root and loop devices to make a log tree through the kernel";
  sh("truncate -s 200M " + img_ + " && mkfs.btrfs -q " + img_);
  mount("commit=300");
  sh("echo before > " + mnt_ + "/committed && sync && echo logged > " + mnt_ + "/logged && python3 -c \"import os; "
     "os.fsync(os.open('" + mnt_ + "/logged', os.O_RDONLY))\" && cp --sparse=always " + img_ + " " + dir_ + "/crash.img");
  umount();
  sh("mv " + dir_ + "/crash.img " + img_);
  auto t = open();
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_NE((*t)->volume().super().log_root, 0u) << "the copy should hold a log tree";
  ASSERT_EQ((*t)->warnings().size(), 1u);
  EXPECT_NE((*t)->warnings()[0].find("log tree that needs replay"), std::string::npos);
  mount("ro,rescue=nologreplay");
  compare(**t, (*t)->root_ino(), mnt_, "", {});
  umount();
  EXPECT_EQ((*t)->lookup((*t)->root_ino(), "logged").status().code(), ENOENT) << "the state before replay";
  std::vector<std::pair<uint64_t, uint64_t>> free;
  ASSERT_TRUE((*t)->free_space()->unused_ranges(free).ok());
  for (auto [off, len] : free)
    for (const Chunk& c : (*t)->volume().chunks())
      for (uint64_t copy : c.copies) EXPECT_TRUE(off + len <= copy || off >= copy + c.length) << "inside a chunk";
  // The kernel's replay (on a read-write mount of the image) brings the logged file back.
  mount("");
  EXPECT_EQ(read_host(mnt_ + "/logged"), "logged\n");
  umount();
}

TEST_F(BtrfsImage, ChoosesSubvolumesAndNamesWhatIsMissing) {
  std::string src = dir_ + "/src";
  make_source(src);
  sh("truncate -s 160M " + img_ + " && mkfs.btrfs -q -r " + src + " " + img_);
  auto t = open("no/such/subvolume");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no subvolume 'no/such/subvolume'"), std::string::npos) << t.status().message();
  auto top = open("5");
  ASSERT_TRUE(top.ok()) << top.status().message();
  EXPECT_EQ((*top)->subvolumes().size(), 1u);
}

}  // namespace
}  // namespace vdkit::guestfs::btrfs
