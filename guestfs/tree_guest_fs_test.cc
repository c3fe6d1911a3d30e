// Unit tests for the GuestFs adapter over a FileTree: symbolic links stay inside the guest, reads, no writes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "guestfs/file_tree.h"
#include "guestfs/guest_fs.h"

namespace vdkit::guestfs {
namespace {

// A tiny tree held in maps: enough to drive the adapter.
class MapTree : public FileTree {
 public:
  struct Node {
    uint32_t mode;
    std::string data;  // file content or link target
    std::map<std::string, uint64_t> children;
  };
  std::map<uint64_t, Node> nodes;
  uint64_t root_ino() const override { return 1; }
  Result<TreeStat> stat(uint64_t ino) override {
    auto it = nodes.find(ino);
    if (it == nodes.end()) return Status::Corrupt("no inode " + std::to_string(ino));
    TreeStat st;
    st.ino = ino;
    st.mode = it->second.mode;
    st.size = it->second.data.size();
    return st;
  }
  Result<uint64_t> lookup(uint64_t dir, std::string_view name) override {
    auto& c = nodes.at(dir).children;
    auto it = c.find(std::string(name));
    if (it == c.end()) return Status::Error(ENOENT, std::string(name) + " not found");
    return it->second;
  }
  Status read_dir(uint64_t dir, std::vector<TreeEntry>& out) override {
    out.clear();
    for (auto& [n, i] : nodes.at(dir).children) out.push_back({n, i, nodes.at(i).mode & S_IFMT});
    return Status::Ok();
  }
  Result<size_t> read(uint64_t ino, uint64_t off, std::span<uint8_t> buf) override {
    const std::string& d = nodes.at(ino).data;
    if (off >= d.size()) return size_t{0};
    size_t n = std::min<size_t>(buf.size(), std::min<size_t>(3, d.size() - off));  // short reads on purpose
    std::copy_n(d.data() + off, n, buf.data());
    return n;
  }
  Result<std::string> read_link(uint64_t ino) override { return nodes.at(ino).data; }
  std::string describe() const override { return "map tree"; }
};

std::shared_ptr<MapTree> sample() {
  auto t = std::make_shared<MapTree>();
  t->nodes[1] = {S_IFDIR | 0755, "", {{"etc", 2}, {"boot", 5}, {"up", 6}, {"loop", 7}}};
  t->nodes[2] = {S_IFDIR | 0755, "", {{"fstab", 3}, {"mtab", 4}}};
  t->nodes[3] = {S_IFREG | 0644, "UUID=1 / ext4\n", {}};
  t->nodes[4] = {S_IFLNK | 0777, "/etc/fstab", {}};
  t->nodes[5] = {S_IFDIR | 0755, "", {}};
  t->nodes[6] = {S_IFLNK | 0777, "../../../../etc", {}};
  t->nodes[7] = {S_IFLNK | 0777, "loop", {}};
  return t;
}

TEST(TreeGuestFs, ReadsFollowLinksInsideTheGuest) {
  auto fs = make_tree_guest_fs(sample());
  EXPECT_EQ(*fs->read_file("/etc/fstab"), "UUID=1 / ext4\n");
  EXPECT_EQ(*fs->read_file("/etc/mtab"), "UUID=1 / ext4\n");
  EXPECT_EQ(*fs->read_file("/up/fstab"), "UUID=1 / ext4\n") << ".. never climbs above the guest's /";
  EXPECT_TRUE(fs->is_dir("/up"));
  EXPECT_TRUE(fs->is_file("/etc/mtab"));
  EXPECT_FALSE(fs->is_file("/etc"));
  EXPECT_EQ(fs->list_dir("/etc"), (std::vector<std::string>{"fstab", "mtab"}));
  EXPECT_EQ(fs->read_file("/loop/x").status().code(), ELOOP);
  EXPECT_EQ(fs->read_file("/etc/none").status().code(), ENOENT);
  EXPECT_EQ(fs->read_file("/etc/fstab", 4).status().code(), EFBIG);
}

TEST(TreeGuestFs, NeverWrites) {
  auto fs = make_tree_guest_fs(sample());
  EXPECT_FALSE(fs->writable());
  Status st = fs->write_file("/etc/fstab", "x");
  EXPECT_EQ(st.code(), EROFS);
  EXPECT_NE(st.message().find("--kernel"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace vdkit::guestfs
