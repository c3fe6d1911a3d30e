// MountedGuestFs, several file systems as one guest tree, and the guest path helpers it routes with.
#include "guestfs/guest_fs.h"

namespace vdkit::guestfs {

std::string normalize_guest_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view p = path.substr(i, j - i);
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!p.empty() && p != ".") {
      parts.emplace_back(p);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string guest_dirname(const std::string& path) {
  std::string n = normalize_guest_path(path);
  size_t k = n.rfind('/');
  return k == 0 ? "/" : n.substr(0, k);
}

std::string guest_join(const std::string& dir, const std::string& name) {
  return normalize_guest_path(dir + "/" + name);
}

void MountedGuestFs::add(const std::string& mount_point, GuestFsPtr fs) {
  mounts_[normalize_guest_path(mount_point)] = std::move(fs);
}

std::pair<GuestFs*, std::string> MountedGuestFs::route(const std::string& path) const {
  std::string n = normalize_guest_path(path);
  const std::pair<const std::string, GuestFsPtr>* best = nullptr;
  for (const auto& m : mounts_) {
    const std::string& mp = m.first;
    bool under =
        mp == "/" || n == mp || (n.size() > mp.size() && n.compare(0, mp.size(), mp) == 0 && n[mp.size()] == '/');
    if (under && (!best || mp.size() > best->first.size())) best = &m;
  }
  if (!best) return {nullptr, n};
  std::string inner = best->first == "/" ? n : normalize_guest_path(n.substr(best->first.size()));
  return {best->second.get(), inner};
}

Result<std::string> MountedGuestFs::read_file(const std::string& path, size_t max_bytes) {
  auto [fs, p] = route(path);
  if (!fs) return Status::Error(ENOENT, "no file system mounted for " + path);
  return fs->read_file(p, max_bytes);
}
bool MountedGuestFs::is_file(const std::string& path) {
  auto [fs, p] = route(path);
  return fs && fs->is_file(p);
}
bool MountedGuestFs::is_dir(const std::string& path) {
  auto [fs, p] = route(path);
  return fs && fs->is_dir(p);
}
std::vector<std::string> MountedGuestFs::list_dir(const std::string& path) {
  auto [fs, p] = route(path);
  return fs ? fs->list_dir(p) : std::vector<std::string>{};
}
Status MountedGuestFs::write_file(const std::string& path, std::string_view data) {
  auto [fs, p] = route(path);
  if (!fs) return Status::Error(ENOENT, "no file system mounted for " + path);
  return fs->write_file(p, data);
}
std::optional<uint64_t> GuestFs::free_bytes_at(const std::string&) {
  FreeSpaceMap* m = free_space();
  if (!m) return std::nullopt;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  if (!m->unused_ranges(ranges).ok()) return std::nullopt;
  uint64_t total = 0;
  for (const auto& r : ranges) total += r.second;
  return total;
}
std::optional<uint64_t> MountedGuestFs::free_bytes_at(const std::string& path) {
  auto [fs, p] = route(path);
  return fs ? fs->free_bytes_at(p) : std::nullopt;
}
bool MountedGuestFs::writable() const {
  for (const auto& m : mounts_)
    if (!m.second->writable()) return false;
  return !mounts_.empty();
}
std::string MountedGuestFs::describe() const {
  std::string s;
  for (const auto& m : mounts_) s += (s.empty() ? "" : ", ") + m.first + ": " + m.second->describe();
  return s;
}

}  // namespace vdkit::guestfs
