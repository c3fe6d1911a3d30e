// The GuestFs adapter over a FileTree: path resolution inside the guest, whole-file reads, no writes.
#include <sys/stat.h>

#include <algorithm>

#include "guestfs/file_tree.h"
#include "guestfs/guest_fs.h"

namespace vdkit::guestfs {

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

class TreeGuestFs : public GuestFs {
 public:
  explicit TreeGuestFs(FileTreePtr tree) : tree_(std::move(tree)) {}

  Result<std::string> read_file(const std::string& path, size_t max_bytes) override {
    VDKIT_ASSIGN_OR_RETURN(uint64_t ino, resolve_tree_path(*tree_, path, true));
    VDKIT_ASSIGN_OR_RETURN(TreeStat st, tree_->stat(ino));
    if (!S_ISREG(st.mode)) return Status::Error(EISDIR, path + " in " + describe() + " is not a regular file");
    if (st.size > max_bytes)
      return Status::Error(EFBIG, path + " holds " + std::to_string(st.size) + " bytes, more than the limit of " +
                                      std::to_string(max_bytes));
    std::string data(static_cast<size_t>(st.size), '\0');
    size_t got = 0;
    while (got < data.size()) {
      auto n = tree_->read(ino, got, {reinterpret_cast<uint8_t*>(data.data()) + got, data.size() - got});
      if (!n.ok()) return n.status().Context("reading " + path + " in " + describe());
      if (*n == 0) return Status::Corrupt(path + " in " + describe() + " ends before its recorded size");
      got += *n;
    }
    return data;
  }

  bool is_file(const std::string& path) override { return kind(path) == S_IFREG; }
  bool is_dir(const std::string& path) override { return kind(path) == S_IFDIR; }

  std::vector<std::string> list_dir(const std::string& path) override {
    std::vector<std::string> names;
    auto ino = resolve_tree_path(*tree_, path, true);
    if (!ino.ok()) return names;
    std::vector<TreeEntry> entries;
    if (!tree_->read_dir(*ino, entries).ok()) return names;
    for (auto& e : entries) names.push_back(std::move(e.name));
    std::sort(names.begin(), names.end());
    return names;
  }

  Status write_file(const std::string& path, std::string_view) override {
    return Status::Error(EROFS, describe() + " is read by vdkit itself, which never writes it; cannot write " + path +
                                    " (use --kernel to write it through the host kernel)");
  }
  bool writable() const override { return false; }
  std::string describe() const override { return tree_->describe(); }
  FreeSpaceMap* free_space() override { return tree_->free_space(); }

 private:
  uint32_t kind(const std::string& path) {
    auto ino = resolve_tree_path(*tree_, path, true);
    if (!ino.ok()) return 0;
    auto st = tree_->stat(*ino);
    return st.ok() ? (st->mode & S_IFMT) : 0;
  }
  FileTreePtr tree_;
};

}  // namespace

Result<uint64_t> resolve_tree_path(FileTree& tree, const std::string& path, bool follow_last) {
  std::vector<std::string> todo = split_path(path);
  std::reverse(todo.begin(), todo.end());  // a stack: the next component is at the back
  std::vector<uint64_t> stack{tree.root_ino()};  // the folders walked, so ".." never climbs above /
  int hops = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    VDKIT_ASSIGN_OR_RETURN(TreeStat dir, tree.stat(stack.back()));
    if (!S_ISDIR(dir.mode)) return Status::Error(ENOTDIR, path + ": a component is not a folder");
    auto ino = tree.lookup(stack.back(), name);
    if (!ino.ok()) return ino.status();
    VDKIT_ASSIGN_OR_RETURN(TreeStat st, tree.stat(*ino));
    if (S_ISLNK(st.mode) && (follow_last || !todo.empty())) {
      if (++hops > kMaxSymlinkHops) return Status::Error(ELOOP, path + ": too many symbolic links");
      VDKIT_ASSIGN_OR_RETURN(std::string target, tree.read_link(*ino));
      if (!target.empty() && target[0] == '/') stack.resize(1);
      std::vector<std::string> more = split_path(target);
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
      continue;
    }
    stack.push_back(*ino);
  }
  return stack.back();
}

std::unique_ptr<GuestFs> make_tree_guest_fs(FileTreePtr tree) { return std::make_unique<TreeGuestFs>(std::move(tree)); }

}  // namespace vdkit::guestfs
