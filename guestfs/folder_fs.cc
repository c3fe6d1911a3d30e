// The folder GuestFs: a guest tree in a host folder, symbolic links confined to the guest root.
#include "guestfs/guest_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vdkit::guestfs {

namespace {

class FolderGuestFs : public GuestFs {
 public:
  FolderGuestFs(std::string root, bool writable) : root_(std::move(root)), writable_(writable) {}

  Result<std::string> read_file(const std::string& path, size_t max_bytes) override {
    VDKIT_ASSIGN_OR_RETURN(std::string host, resolve(path, true));
    int fd = ::open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Status::FromErrno(errno, "opening " + path + " in " + describe());
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return Status::Error(EISDIR, path + " in " + describe() + " is not a regular file");
    }
    if (static_cast<uint64_t>(st.st_size) > max_bytes) {
      ::close(fd);
      return Status::Error(EFBIG, path + " holds " + std::to_string(st.st_size) + " bytes, more than the limit of " +
                                      std::to_string(max_bytes));
    }
    std::string data(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < data.size()) {
      ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = n < 0 ? errno : EIO;
        ::close(fd);
        return Status::FromErrno(err, "reading " + path + " in " + describe());
      }
      got += static_cast<size_t>(n);
    }
    ::close(fd);
    return data;
  }

  bool is_file(const std::string& path) override { return kind(path) == S_IFREG; }
  bool is_dir(const std::string& path) override { return kind(path) == S_IFDIR; }

  std::vector<std::string> list_dir(const std::string& path) override {
    std::vector<std::string> names;
    auto host = resolve(path, true);
    if (!host.ok()) return names;
    DIR* d = ::opendir(host->c_str());
    if (!d) return names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status write_file(const std::string& path, std::string_view data) override {
    if (!writable_) return Status::Error(EROFS, describe() + " is opened read-only; cannot write " + path);
    VDKIT_ASSIGN_OR_RETURN(std::string host, resolve(path, true));
    struct stat st;
    bool existed = ::lstat(host.c_str(), &st) == 0;
    if (existed && !S_ISREG(st.st_mode)) return Status::Error(EISDIR, path + " is not a regular file");
    // Rewrite in place (O_TRUNC) so hard links, mode, owner and SELinux labels stay.
    int fd = ::open(host.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return Status::FromErrno(errno, "writing " + path + " in " + describe());
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return Status::FromErrno(err, "writing " + path + " in " + describe());
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) return Status::FromErrno(errno, "writing " + path);
    return Status::Ok();
  }

  bool writable() const override { return writable_; }
  std::string describe() const override { return "folder " + root_; }
  std::optional<uint64_t> free_bytes_at(const std::string& path) override {
    auto host = resolve(guest_dirname(path), true);
    struct statvfs v;
    if (!host.ok() || ::statvfs(host->c_str(), &v) != 0) return std::nullopt;
    return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  }

 private:
  int kind(const std::string& path) {
    auto host = resolve(path, true);
    struct stat st;
    if (!host.ok() || ::lstat(host->c_str(), &st) != 0) return 0;
    return st.st_mode & S_IFMT;
  }

  // Maps a guest path to a host path under root_, following symbolic links
  // as the guest would see them (absolute targets restart at the guest root).
  // The last component is followed when follow_last; a missing last
  // component is fine (for creating files).
  Result<std::string> resolve(const std::string& path, bool follow_last) {
    std::vector<std::string> todo;
    std::string norm = normalize_guest_path(path);
    auto push_parts = [&todo](const std::string& p) {
      std::vector<std::string> parts;
      size_t i = 0;
      while (i < p.size()) {
        size_t j = p.find('/', i);
        if (j == std::string::npos) j = p.size();
        if (j > i) parts.push_back(p.substr(i, j - i));
        i = j + 1;
      }
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_back(*it);
    };
    push_parts(norm);
    std::vector<std::string> done;
    int hops = 0;
    while (!todo.empty()) {
      std::string part = todo.back();
      todo.pop_back();
      if (part == ".") continue;
      if (part == "..") {
        if (!done.empty()) done.pop_back();
        continue;
      }
      std::string host = root_;
      for (const auto& d : done) host += "/" + d;
      host += "/" + part;
      struct stat st;
      bool last = todo.empty();
      if (::lstat(host.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && (!last || follow_last)) {
        if (++hops > kMaxSymlinkHops)
          return Status::Error(ELOOP, "too many symbolic links resolving " + path + " in " + describe());
        char buf[4096];
        ssize_t n = ::readlink(host.c_str(), buf, sizeof buf - 1);
        if (n < 0) return Status::FromErrno(errno, "reading link " + path);
        std::string target(buf, static_cast<size_t>(n));
        if (!target.empty() && target[0] == '/') done.clear();
        push_parts(target);
        continue;
      }
      done.push_back(part);
    }
    std::string host = root_;
    for (const auto& d : done) host += "/" + d;
    return host;
  }

  std::string root_;
  bool writable_;
};

}  // namespace

Result<GuestFsPtr> open_folder_guest(const std::string& root, bool writable) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) return Status::FromErrno(errno, "opening guest folder " + root);
  if (!S_ISDIR(st.st_mode)) return Status::Error(ENOTDIR, root + " is not a folder");
  std::string r = root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return GuestFsPtr(new FolderGuestFs(r, writable));
}

}  // namespace vdkit::guestfs
