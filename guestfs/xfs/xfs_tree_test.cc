// The XFS reader against what mkfs.xfs put in the image (v4 and v5, 512/1024/4096-byte blocks, with and without
// ftype, dir blocks larger than fs blocks), against xfs_db (directory listings, free space), and on v5 against the
// kernel's own read-only view (`ro,norecovery` loop mount) after the kernel added fragmented (btree), sparse and
// preallocated files and extended attributes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"
#include "guestfs/guest_fs.h"
#include "guestfs/xfs/xfs_images_test.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {
namespace {

namespace fs = std::filesystem;
using testimg::Model;

struct Config {
  const char* name;
  const char* mkfs;
  uint32_t block_size, dir_block_size;
  bool v5;
};

const Config kConfigs[] = {
    {"v5_4k", "-m crc=1 -b size=4096 -d agcount=3", 4096, 4096, true},
    {"v5_1k_dir4k", "-m crc=1 -b size=1024 -n size=4096", 1024, 4096, true},
    {"v4_512", "-m crc=0 -b size=512", 512, 4096, false},
    {"v4_4k_noftype", "-m crc=0 -n ftype=0 -b size=4096 -i size=512", 4096, 4096, false},
    {"v4_1k_i256", "-m crc=0 -b size=1024 -i size=256", 1024, 4096, false},
};

bool have_tools() { return test::run("PATH=$PATH:/usr/sbin command -v mkfs.xfs && command -v xfs_db") == 0; }

std::string g_dir;  // the suite's scratch folder

std::string image_path(const Config& c) { return g_dir + "/" + c.name + ".img"; }

class XfsImages : public ::testing::TestWithParam<Config> {
 public:
  static void SetUpTestSuite() {
    if (!have_tools()) return;
    char tmpl[] = "/tmp/vdkit-xfs-test.XXXXXX";
    g_dir = mkdtemp(tmpl);
    for (const Config& c : kConfigs) {
      std::string log;
      int rc = testimg::make_image(testimg::base_model(!c.v5), image_path(c), g_dir + "/src-" + c.name, c.mkfs, 96, &log);
      if (rc != 0) ADD_FAILURE() << c.name << ": mkfs.xfs failed: " << log;
    }
  }
  static void TearDownTestSuite() {
    if (!g_dir.empty()) fs::remove_all(g_dir);
    g_dir.clear();
  }

 protected:
  void SetUp() override {
    if (!have_tools()) GTEST_SKIP() << "needs mkfs.xfs and xfs_db (xfsprogs)";
  }
  std::shared_ptr<XfsTree> open(const std::string& path) {
    auto dev = open_image(path);
    EXPECT_TRUE(dev.ok()) << dev.status().message();
    auto t = XfsTree::Open(std::shared_ptr<BlockDevice>(std::move(*dev)), fs::path(path).filename().string());
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? *t : nullptr;
  }
};

std::string read_all(FileTree& t, uint64_t ino, uint64_t size) {
  std::string out(size, '\0');
  // Odd-sized pieces, so reads start and end inside blocks and extents.
  size_t done = 0, piece = 4093;
  while (done < size) {
    auto n = t.read(ino, done, {reinterpret_cast<uint8_t*>(out.data()) + done, std::min<size_t>(piece, size - done)});
    if (!n.ok() || *n == 0) return "<read failed: " + (n.ok() ? std::string("short") : n.status().message()) + ">";
    done += *n;
    piece = piece * 3 % 100000 + 1;
  }
  return out;
}

uint32_t type_bits(char t) {
  switch (t) {
    case 'd': return S_IFDIR;
    case 'l': return S_IFLNK;
    case 'c': return S_IFCHR;
    case 'b': return S_IFBLK;
    case 'p': return S_IFIFO;
    default: return S_IFREG;
  }
}

TEST_P(XfsImages, EveryFileLinkModeAndOwnerAsPutThere) {
  const Config& c = GetParam();
  auto t = open(image_path(c));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->superblock().version(), c.v5 ? 5 : 4);
  EXPECT_EQ(t->superblock().block_size, c.block_size);
  EXPECT_FALSE(t->log_dirty()) << t->state();
  EXPECT_TRUE(t->warnings().empty());
  Model m = testimg::base_model(!c.v5);
  std::map<std::string, std::set<std::string>> children;
  for (const auto& [path, nd] : m) children[path.substr(0, path.rfind('/'))].insert(path.substr(path.rfind('/') + 1));
  for (const auto& [path, nd] : m) {
    SCOPED_TRACE(path);
    auto ino = resolve_tree_path(*t, path, false);
    ASSERT_TRUE(ino.ok()) << ino.status().message();
    auto st = t->stat(*ino);
    ASSERT_TRUE(st.ok()) << st.status().message();
    EXPECT_EQ(st->mode & S_IFMT, type_bits(nd.type));
    EXPECT_EQ(st->mode & 07777, nd.perm);
    EXPECT_EQ(st->uid, nd.uid);
    EXPECT_EQ(st->gid, nd.gid);
    if (nd.type == '-') {
      EXPECT_EQ(st->size, nd.data.size());
      EXPECT_TRUE(read_all(*t, *ino, st->size) == nd.data);
    } else if (nd.type == 'l') {
      auto target = t->read_link(*ino);
      ASSERT_TRUE(target.ok()) << target.status().message();
      EXPECT_EQ(*target, nd.data);
    } else if (nd.type == 'c' || nd.type == 'b') {
      EXPECT_EQ(major(st->rdev), nd.major);
      EXPECT_EQ(minor(st->rdev), nd.minor);
    } else if (nd.type == 'd') {
      std::vector<TreeEntry> entries;
      ASSERT_TRUE(t->read_dir(*ino, entries).ok());
      std::set<std::string> names;
      for (const auto& e : entries) {
        names.insert(e.name);
        // With ftype the entry's type is the inode's; without it, 0.
        if (t->superblock().has_ftype()) {
          auto est = t->stat(e.ino);
          ASSERT_TRUE(est.ok());
          EXPECT_EQ(e.type, est->mode & S_IFMT) << e.name;
        } else {
          EXPECT_EQ(e.type, 0u);
        }
      }
      EXPECT_EQ(names, children[path]);
    }
  }
  // A whole file through the GuestFs adapter, and a missing one.
  auto gfs = make_tree_guest_fs(t);
  EXPECT_EQ(*gfs->read_file("/links/short"), m["/etc/fstab"].data);
  EXPECT_EQ(gfs->read_file("/etc/nothing").status().code(), ENOENT);
  EXPECT_EQ(gfs->write_file("/etc/hostname", "x").code(), EROFS);
}

TEST_P(XfsImages, EveryDirectoryFormIsThere) {
  const Config& c = GetParam();
  const std::string img = image_path(c);
  std::set<std::string> forms;
  for (int n : testimg::kDirSizes)
    forms.insert(testimg::dir_form(img, "/dirs/n" + std::to_string(n), c.block_size, c.dir_block_size));
  EXPECT_EQ(forms, (std::set<std::string>{"shortform", "block", "leaf", "node"}));
}

TEST_P(XfsImages, DirectoriesMatchXfsDb) {
  const Config& c = GetParam();
  auto t = open(image_path(c));
  ASSERT_TRUE(t);
  std::vector<std::string> dirs = {"/", "/etc", "/dev", "/links"};
  for (int n : testimg::kDirSizes) dirs.push_back("/dirs/n" + std::to_string(n));
  for (const std::string& dir : dirs) {
    SCOPED_TRACE(dir);
    // "6          65569              regular        0x6e7d30e4   5 fstab (good)"
    std::string out = test::output_of("PATH=$PATH:/usr/sbin xfs_db -r -c 'ls " + dir + "' " +
                                      image_path(c) + " 2>/dev/null");
    std::set<std::pair<std::string, uint64_t>> theirs, ours;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string off, ino, type, hash, len, name;
      if (!(f >> off >> ino >> type >> hash >> len >> name) || name == "." || name == "..") continue;
      theirs.emplace(name, std::stoull(ino));
    }
    auto ino = resolve_tree_path(*t, dir, true);
    ASSERT_TRUE(ino.ok());
    std::vector<TreeEntry> entries;
    ASSERT_TRUE(t->read_dir(*ino, entries).ok());
    for (const auto& e : entries) ours.emplace(e.name, e.ino);
    EXPECT_FALSE(theirs.empty());
    EXPECT_EQ(ours, theirs);
  }
}

TEST_P(XfsImages, FreeSpaceMatchesXfsDb) {
  const Config& c = GetParam();
  auto t = open(image_path(c));
  ASSERT_TRUE(t);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  ASSERT_TRUE(t->unused_ranges(ranges).ok());
  ASSERT_FALSE(ranges.empty());
  const auto& sb = t->superblock();
  // xfs_db's freesp also counts the AG free-list blocks, which are not free for sparsify.
  std::string out = test::output_of("PATH=$PATH:/usr/sbin xfs_db -r -c 'freesp -d' " + image_path(c));
  std::set<uint64_t> their_blocks;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("from") != std::string::npos) break;  // the histogram follows the list
    unsigned long long agno, agbno, len;
    if (std::sscanf(line.c_str(), "%llu %llu %llu", &agno, &agbno, &len) != 3) continue;
    for (uint64_t b = 0; b < len; ++b) their_blocks.insert(agno * sb.agblocks + agbno + b);
  }
  uint64_t flcount = 0;
  for (uint32_t ag = 0; ag < sb.agcount; ++ag) {
    std::string fl = test::output_of("PATH=$PATH:/usr/sbin xfs_db -r -c 'agf " + std::to_string(ag) +
                                     "' -c 'print flcount' " + image_path(c));
    flcount += std::stoull(fl.substr(fl.find('=') + 1));
  }
  uint64_t ours = 0, prev_end = 0;
  for (const auto& [off, len] : ranges) {
    EXPECT_GT(off, prev_end == 0 ? 0 : prev_end - 1);  // sorted, not touching
    EXPECT_EQ(off % sb.block_size, 0u);
    for (uint64_t b = off / sb.block_size; b < (off + len) / sb.block_size; ++b)
      EXPECT_TRUE(their_blocks.count(b)) << "block " << b << " is not free per xfs_db";
    ours += len / sb.block_size;
    prev_end = off + len;
  }
  EXPECT_EQ(ours + flcount, their_blocks.size()) << out;
}

INSTANTIATE_TEST_SUITE_P(Xfs, XfsImages, ::testing::ValuesIn(kConfigs),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vdkit::guestfs::xfs
