// Hostile XFS images: each one damaged in one place (with xfs_db's expert mode, which rewrites v5 CRCs so the
// semantic checks are reached, or with dd, which breaks them), opened and walked completely. Every one must end in
// an error that names what is wrong; none may crash or hang (this also runs under ASan/UBSan).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/xfs/xfs_images_test.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {
namespace {

namespace fs = std::filesystem;

std::string g_dir;

bool have_tools() { return test::run("PATH=$PATH:/usr/sbin command -v mkfs.xfs && command -v xfs_db") == 0; }

// Reads everything reachable: every inode's stat, content, link target, attributes and the free-space map. Returns
// the first error (Ok when the image reads cleanly).
Status walk_all(XfsTree& t) {
  constexpr int kMaxDepth = 64;
  std::set<uint64_t> seen;
  std::vector<std::pair<uint64_t, int>> todo = {{t.root_ino(), 0}};
  std::vector<uint8_t> buf(1 << 16);
  while (!todo.empty()) {
    auto [ino, depth] = todo.back();
    todo.pop_back();
    if (!seen.insert(ino).second) continue;
    if (depth > kMaxDepth) return Status::Corrupt("deeper than the walk allows");
    VDKIT_ASSIGN_OR_RETURN(TreeStat st, t.stat(ino));
    std::vector<std::string> names;
    VDKIT_RETURN_IF_ERROR(t.list_xattrs(ino, names));
    for (const auto& n : names) VDKIT_RETURN_IF_ERROR(t.get_xattr(ino, n).status());
    if (S_ISDIR(st.mode)) {
      std::vector<TreeEntry> entries;
      VDKIT_RETURN_IF_ERROR(t.read_dir(ino, entries));
      for (const auto& e : entries) {
        VDKIT_ASSIGN_OR_RETURN(uint64_t child, t.lookup(ino, e.name));
        todo.emplace_back(child, depth + 1);
      }
    } else if (S_ISREG(st.mode)) {
      for (uint64_t off = 0; off < st.size; off += buf.size()) VDKIT_RETURN_IF_ERROR(t.read(ino, off, buf).status());
    } else if (S_ISLNK(st.mode)) {
      VDKIT_RETURN_IF_ERROR(t.read_link(ino).status());
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  return t.unused_ranges(ranges);
}

Status open_and_walk(const std::string& image) {
  auto dev = open_image(image);
  if (!dev.ok()) return dev.status();
  auto t = XfsTree::Open(std::shared_ptr<BlockDevice>(std::move(*dev)), "hostile image");
  if (!t.ok()) return t.status();
  return walk_all(**t);
}

class XfsHostile : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (!have_tools()) return;
    char tmpl[] = "/tmp/vdkit-xfs-hostile.XXXXXX";
    g_dir = mkdtemp(tmpl);
    std::string log;
    if (testimg::make_image(testimg::base_model(true), g_dir + "/v4.img", g_dir + "/src4", "-m crc=0 -b size=1024", 64,
                            &log) != 0 ||
        testimg::make_image(testimg::base_model(false), g_dir + "/v5.img", g_dir + "/src5", "-m crc=1 -b size=1024",
                            64, &log) != 0)
      ADD_FAILURE() << "mkfs.xfs: " << log;
  }
  static void TearDownTestSuite() {
    if (!g_dir.empty()) fs::remove_all(g_dir);
    g_dir.clear();
  }

 protected:
  void SetUp() override {
    if (!have_tools()) GTEST_SKIP() << "needs mkfs.xfs and xfs_db";
  }
  // The inode number of a path in the pristine image.
  uint64_t ino_of(const std::string& version, const std::string& path) {
    auto dev = open_image(g_dir + "/" + version + ".img");
    EXPECT_TRUE(dev.ok());
    auto t = XfsTree::Open(std::shared_ptr<BlockDevice>(std::move(*dev)), "pristine");
    EXPECT_TRUE(t.ok());
    auto ino = resolve_tree_path(**t, path, false);
    EXPECT_TRUE(ino.ok()) << path;
    return ino.ok() ? *ino : 0;
  }
  // A copy of the pristine image damaged by `cmd` (run with $IMG set); returns the walk's result.
  Status damaged(const std::string& version, const std::string& cmd) {
    std::string img = g_dir + "/damaged.img";
    std::string out;
    EXPECT_EQ(test::run("cp --sparse=always " + g_dir + "/" + version + ".img " + img + " && IMG=" + img +
                            " PATH=$PATH:/usr/sbin; export IMG; " + cmd,
                        &out),
              0)
        << cmd << "\n" << out;
    Status st = open_and_walk(img);
    if (st.ok()) ADD_FAILURE() << "read cleanly after: " << cmd << "\n" << out;
    unlink(img.c_str());
    return st;
  }
  std::string db(const std::string& ino, const std::string& write) {
    return "xfs_db -x -c 'inode " + ino + "' -c '" + write + "' $IMG 2>&1";
  }
  void expect_refused(const Status& st, const std::string& words) {
    EXPECT_NE(st.message().find(words), std::string::npos) << "wanted '" << words << "' in: " << st.message();
  }
};

TEST_F(XfsHostile, PristineImagesReadCleanly) {
  for (const char* v : {"v4", "v5"}) {
    Status st = open_and_walk(g_dir + "/" + v + ".img");
    EXPECT_TRUE(st.ok()) << v << ": " << st.message();
  }
}

TEST_F(XfsHostile, Truncated) {
  expect_refused(damaged("v4", "truncate -s 20M $IMG"), "truncated image?");
  expect_refused(damaged("v5", "truncate -s 300 $IMG"), "too small for an XFS superblock");
}

TEST_F(XfsHostile, BadSuperblocks) {
  expect_refused(damaged("v4", "xfs_db -x -c 'sb 0' -c 'write agcount 0' $IMG 2>&1"), "sb_dblocks");
  expect_refused(damaged("v4", "xfs_db -x -c 'sb 0' -c 'write blocksize 3000' $IMG 2>&1"), "sb_blocksize");
  expect_refused(damaged("v4", "xfs_db -x -c 'sb 0' -c 'write rootino 99999999999' $IMG 2>&1"), "sb_rootino");
  expect_refused(damaged("v5", "printf '\\x01' | dd of=$IMG bs=1 seek=300 conv=notrunc status=none"),
                 "superblock (sector 0): CRC mismatch");
}

TEST_F(XfsHostile, BadInodes) {
  const std::string f = std::to_string(ino_of("v4", "/etc/big.bin"));
  expect_refused(damaged("v4", db(f, "write core.magic 0")), "inode " + f + ": no inode magic");
  expect_refused(damaged("v4", db(f, "write core.nextents 2000000000")), "does not fit the data fork");
  expect_refused(damaged("v4", db(f, "write core.forkoff 250")), "past the inode's literal area");
  expect_refused(damaged("v4", db(f, "write core.format 1")), "does not fit mode");
  const std::string l = std::to_string(ino_of("v4", "/links/remote"));
  expect_refused(damaged("v4", db(l, "write core.size 5000")), "has length 5000");
  // v5: a byte of an inode's padding changes, its CRC no longer matches.
  const uint64_t root = ino_of("v5", "/");
  expect_refused(damaged("v5", "xfs_db -x -c 'inode " + std::to_string(root) +
                                   "' -c 'write -c core.gen 77' $IMG 2>&1"),
                 "inode " + std::to_string(root) + ": CRC mismatch (di_crc)");
  const std::string g = std::to_string(ino_of("v5", "/etc/hostname"));
  expect_refused(damaged("v5", db(g, "write -d core.version 2")), "inode version 2 on a v5 file system");
}

TEST_F(XfsHostile, ExtentsPastTheEnd) {
  const std::string f = std::to_string(ino_of("v4", "/etc/big.bin"));
  expect_refused(damaged("v4", db(f, "write u.bmx[0].startblock 4000000")), "lies outside the file system");
  expect_refused(damaged("v4", db(f, "write u.bmx[0].blockcount 2000000")), "lies outside the file system");
  const std::string g = std::to_string(ino_of("v5", "/etc/big.bin"));
  expect_refused(damaged("v5", db(g, "write -d u3.bmx[0].startoff 18014398509481983")), "out of order or overlapping");
}

TEST_F(XfsHostile, DirectoryDamage) {
  const uint64_t sf = ino_of("v4", "/dirs/n3");
  const std::string s = std::to_string(sf);
  expect_refused(damaged("v4", db(s, "write u.sfdir3.list[0].inumber.i4 " + s)), "(a directory loop)");
  expect_refused(damaged("v4", db(s, "write u.sfdir3.hdr.count 200")), "runs past the end");
  expect_refused(damaged("v4", db(s, "write u.sfdir3.hdr.i8count 9")), "i8count 9 above count");
  expect_refused(damaged("v4", db(s, "write u.sfdir3.list[1].namelen 0")), "runs past the end");
  // A block-form directory's data block with its magic overwritten.
  const std::string b = std::to_string(ino_of("v5", "/dirs/n20"));
  expect_refused(damaged("v5", "fsb=$(xfs_db -r -c 'inode " + b +
                                   "' -c bmap $IMG | sed -n 's/.*startblock \\([0-9]*\\) (\\([0-9]*\\)\\/\\([0-9]*\\)).*/\\2 \\3/p');"
                                   " set -- $fsb; agb=$(xfs_db -r -c 'sb 0' -c 'print agblocks' $IMG | cut -d' ' -f3);"
                                   " dd if=/dev/zero of=$IMG bs=1024 seek=$(( $1 * agb + $2 )) count=1 conv=notrunc status=none"),
                 "bad magic");
}

TEST_F(XfsHostile, FreeSpaceBtreeDamage) {
  expect_refused(damaged("v4", "xfs_db -x -c 'agf 0' -c 'write bnoroot 0' $IMG 2>&1"), "bad magic (not ABTB)");
  expect_refused(damaged("v4", "xfs_db -x -c 'agf 1' -c 'write bnolevel 40' $IMG 2>&1"), "bnobt of 40 levels");
  expect_refused(damaged("v5", "xfs_db -x -c 'agf 0' -c 'write -c length 5' $IMG 2>&1"), "AGF of AG 0: CRC mismatch");
}

// A file with a bmbt needs the kernel to fragment it; root only.
TEST_F(XfsHostile, BmbtDamage) {
  if (geteuid() != 0 || test::run("grep -qw xfs /proc/filesystems && command -v xfs_io") != 0)
    GTEST_SKIP() << "needs root and the kernel's XFS to make a btree fork";
  std::string mnt = g_dir + "/mnt", img = g_dir + "/bt.img";
  fs::create_directories(mnt);
  ASSERT_EQ(test::run("cp " + g_dir + "/v5.img " + img + " && mount -o loop,nouuid " + img + " " + mnt), 0);
  std::string punch;
  for (int i = 0; i < 600; ++i) punch += " -c 'fpunch " + std::to_string(i * 8 + 4) + "k 4k'";
  int rc = test::run("xfs_io -f -c 'pwrite -q 0 5m' -c fsync" + punch + " " + mnt + "/frag");
  test::run("umount " + mnt);
  ASSERT_EQ(rc, 0);
  const std::string f = std::to_string(ino_of("bt", "/frag"));
  auto bt = [&](const std::string& write) {
    return damaged("bt", "xfs_db -x -c 'inode " + f + "' -c '" + write + "' $IMG 2>&1");
  };
  ASSERT_TRUE(open_and_walk(g_dir + "/bt.img").ok());  // the undamaged copy reads cleanly
  expect_refused(bt("write u3.bmbt.level 50"), "btree of 50 levels");
  expect_refused(bt("write u3.bmbt.numrecs 500"), "pointers (room for");
  expect_refused(bt("write core.nextents 7"), "its btree holds");
  expect_refused(damaged("bt", "p=$(xfs_db -r -c 'inode " + f + "' -c 'print u3.bmbt.ptrs[1]' $IMG | cut -d' ' -f3); " +
                                   "xfs_db -x -c 'inode " + f + "' -c \"write u3.bmbt.ptrs[2] $p\" $IMG 2>&1"),
                 "is reached twice (a cycle in the btree)");
}

}  // namespace
}  // namespace vdkit::guestfs::xfs
