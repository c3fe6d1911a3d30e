// Mounts the tree view over an in-memory FileTree and checks what the kernel shows through it: stat, listings,
// contents, links, xattrs, statfs, refusal of writes, and the root/inode-1 swap.
#include "fuse/tree_fuse.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace vdkit {
namespace {

using guestfs::TreeEntry;
using guestfs::TreeStat;

class MapTree : public guestfs::FileTree {
 public:
  struct Node {
    TreeStat st;
    std::string data;  // content or link target
    std::map<std::string, uint64_t> children;
    std::map<std::string, std::string> xattrs;
  };
  std::map<uint64_t, Node> nodes;
  uint64_t root = 256;

  void add(uint64_t ino, uint32_t mode, std::string data = {}, uint32_t uid = 0, uint32_t gid = 0) {
    Node n;
    n.st.ino = ino;
    n.st.mode = mode;
    n.st.uid = uid;
    n.st.gid = gid;
    n.st.size = data.size();
    n.st.mtime = {1600000000, 123456789};
    n.data = std::move(data);
    nodes[ino] = std::move(n);
  }
  uint64_t root_ino() const override { return root; }
  Result<TreeStat> stat(uint64_t ino) override {
    auto it = nodes.find(ino);
    if (it == nodes.end()) return Status::Corrupt("inode " + std::to_string(ino) + " is not in the map");
    return it->second.st;
  }
  Result<uint64_t> lookup(uint64_t dir, std::string_view name) override {
    auto it = nodes.find(dir);
    if (it == nodes.end() || !S_ISDIR(it->second.st.mode)) return Status::Error(ENOTDIR, "not a directory");
    auto c = it->second.children.find(std::string(name));
    if (c == it->second.children.end()) return Status::Error(ENOENT, "no " + std::string(name));
    return c->second;
  }
  Status read_dir(uint64_t dir, std::vector<TreeEntry>& out) override {
    out.clear();
    auto it = nodes.find(dir);
    if (it == nodes.end() || !S_ISDIR(it->second.st.mode)) return Status::Error(ENOTDIR, "not a directory");
    for (auto& [n, i] : it->second.children) out.push_back({n, i, nodes.at(i).st.mode & S_IFMT});
    return Status::Ok();
  }
  Result<size_t> read(uint64_t ino, uint64_t off, std::span<uint8_t> buf) override {
    const Node& n = nodes.at(ino);
    if (ino == kBroken) return Status::Corrupt("block 4096 of inode 9 fails its checksum");
    if (off >= n.data.size()) return size_t{0};
    // Short reads on purpose (at most 100000 bytes a call): the view must keep asking.
    size_t k = std::min<size_t>({buf.size(), n.data.size() - off, 100000});
    std::copy_n(n.data.data() + off, k, buf.data());
    return k;
  }
  Result<std::string> read_link(uint64_t ino) override {
    if (!S_ISLNK(nodes.at(ino).st.mode)) return Status::Error(EINVAL, "not a link");
    return nodes.at(ino).data;
  }
  Status list_xattrs(uint64_t ino, std::vector<std::string>& out) override {
    out.clear();
    for (auto& [k, v] : nodes.at(ino).xattrs) out.push_back(k);
    return Status::Ok();
  }
  Result<std::string> get_xattr(uint64_t ino, const std::string& name) override {
    auto& x = nodes.at(ino).xattrs;
    auto it = x.find(name);
    if (it == x.end()) return Status::Error(ENODATA, "no " + name);
    return it->second;
  }
  std::string describe() const override { return "map tree"; }
  static constexpr uint64_t kBroken = 9;
};

std::string big_content() {
  std::string s(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 2654435761u) >> 13);
  return s;
}

std::shared_ptr<MapTree> sample() {
  auto t = std::make_shared<MapTree>();
  t->add(256, S_IFDIR | 0755);
  t->add(1, S_IFREG | 0600, "inode one\n", 1000, 1000);  // shown as inode 256, the root's number
  t->add(257, S_IFDIR | 0700, "", 33, 44);
  t->add(258, S_IFREG | 0644, big_content());
  t->add(259, S_IFLNK | 0777, "../one");
  t->add(260, S_IFCHR | 0620);
  t->nodes[260].st.rdev = makedev(4, 7);
  t->add(MapTree::kBroken, S_IFREG | 0644, "xxxx");
  t->nodes[256].children = {{"one", 1}, {"dir", 257}, {"broken", MapTree::kBroken}};
  t->nodes[257].children = {{"big", 258}, {"link", 259}, {"tty7", 260}};
  t->nodes[258].xattrs = {{"user.colour", "blue"}, {"security.selinux", std::string("system_u:object_r:etc_t:s0\0", 27)}};
  return t;
}

class TreeFuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse here";
    char tmpl[] = "/tmp/vdkit-tree-fuse.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ctx_.tree = sample();
    ctx_.statfs = {4096, 1000, 250, 64, 10, 255};
    const char* argv[] = {"tree_fuse_test", "-o", "ro,fsname=vdkit-test"};
    struct fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
    se_ = fuse_session_new(&args, &tree_fuse_ops(), sizeof(fuse_lowlevel_ops), &ctx_);
    fuse_opt_free_args(&args);  // libfuse copies the arguments it keeps
    ASSERT_NE(se_, nullptr);
    ASSERT_EQ(fuse_session_mount(se_, dir_.c_str()), 0);
    loop_ = std::thread([this] { fuse_session_loop(se_); });
  }
  void TearDown() override {
    if (!se_) {
      if (!dir_.empty()) rmdir(dir_.c_str());
      return;
    }
    fuse_session_exit(se_);
    fuse_session_unmount(se_);  // wakes the loop
    if (loop_.joinable()) loop_.join();
    fuse_session_destroy(se_);
    rmdir(dir_.c_str());
  }
  std::string path(const std::string& p) { return dir_ + "/" + p; }
  std::string slurp(const std::string& p) {
    int fd = open(path(p).c_str(), O_RDONLY);
    if (fd < 0) return "<open failed: " + std::string(strerror(errno)) + ">";
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    int e = errno;
    close(fd);
    if (n < 0) return "<read failed: " + std::string(strerror(e)) + ">";
    return out;
  }

  std::string dir_;
  TreeFuseContext ctx_;
  struct fuse_session* se_ = nullptr;
  std::thread loop_;
};

TEST_F(TreeFuseTest, StatsOwnersModesAndInodeNumbers) {
  struct stat st{};
  ASSERT_EQ(lstat(dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_ino, 1u) << "FUSE's root";
  ASSERT_EQ(lstat(path("one").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, 256u) << "the tree's inode 1 takes the root's number";
  EXPECT_EQ(st.st_mode, S_IFREG | 0600u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_size, 10);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  ASSERT_EQ(lstat(path("dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, 257u);
  EXPECT_EQ(st.st_mode, S_IFDIR | 0700u);
  EXPECT_EQ(st.st_uid, 33u);
  EXPECT_EQ(st.st_gid, 44u);
  ASSERT_EQ(lstat(path("dir/tty7").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 4u);
  EXPECT_EQ(minor(st.st_rdev), 7u);
  EXPECT_NE(lstat(path("dir/none").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_NE(lstat(path("one/x").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOTDIR);
}

TEST_F(TreeFuseTest, ListsDirectories) {
  std::set<std::string> names;
  std::map<std::string, ino_t> inos;
  for (auto& e : std::filesystem::directory_iterator(path("dir"))) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"big", "link", "tty7"}));
  DIR* d = opendir(dir_.c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) inos[e->d_name] = e->d_ino;
  closedir(d);
  EXPECT_EQ(inos.size(), 5u);
  EXPECT_EQ(inos["."], 1u);
  EXPECT_EQ(inos["one"], 256u);
  EXPECT_EQ(inos["dir"], 257u);
}

TEST_F(TreeFuseTest, ReadsWholeFilesThroughShortReads) {
  EXPECT_EQ(slurp("one"), "inode one\n");
  EXPECT_EQ(slurp("dir/big"), big_content());
  EXPECT_EQ(slurp("dir/link"), "inode one\n") << "the kernel follows the link through readlink";
  char buf[64] = {};
  ASSERT_EQ(readlink(path("dir/link").c_str(), buf, sizeof buf - 1), 6);
  EXPECT_STREQ(buf, "../one");
  EXPECT_EQ(slurp("broken"), "<read failed: Input/output error>") << "corrupt metadata is an error, not data";
}

TEST_F(TreeFuseTest, ShowsXattrs) {
  char list[256];
  ssize_t n = llistxattr(path("dir/big").c_str(), list, sizeof list);
  ASSERT_GT(n, 0);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(strlen(list + i)) + 1) names.insert(list + i);
  EXPECT_EQ(names, (std::set<std::string>{"user.colour", "security.selinux"}));
  char v[64];
  ASSERT_EQ(lgetxattr(path("dir/big").c_str(), "user.colour", v, sizeof v), 4);
  EXPECT_EQ(std::string(v, 4), "blue");
  EXPECT_EQ(lgetxattr(path("dir/big").c_str(), "user.colour", v, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(lgetxattr(path("one").c_str(), "user.colour", v, sizeof v), -1);
  EXPECT_EQ(errno, ENODATA);
}

TEST_F(TreeFuseTest, StatfsAndNoWrites) {
  struct statvfs sv{};
  ASSERT_EQ(statvfs(dir_.c_str(), &sv), 0);
  EXPECT_EQ(sv.f_bsize, 4096u);
  EXPECT_EQ(sv.f_blocks, 1000u);
  EXPECT_EQ(sv.f_bfree, 250u);
  EXPECT_EQ(sv.f_files, 64u);
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
  EXPECT_EQ(open(path("one").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(mkdir(path("new").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(unlink(path("one").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
}

}  // namespace
}  // namespace vdkit
