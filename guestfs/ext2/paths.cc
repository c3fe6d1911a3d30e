// Ext2Volume's path API: each call takes the volume lock, resolves the guest path, and runs the inode-level operation.
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit {

Result<Ext2Stat> Ext2Volume::Stat(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return StatLocked(ino);
}

Result<Ext2Stat> Ext2Volume::Lstat(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return StatLocked(ino);
}

bool Ext2Volume::Exists(const std::string& path) { return Lstat(path).ok(); }

Result<std::string> Ext2Volume::ReadFile(const std::string& path) {
  std::unique_lock<std::mutex> lock(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  VDKIT_ASSIGN_OR_RETURN(Ext2Stat st, StatLocked(ino));
  if (LINUX_S_ISDIR(st.mode)) return Status::Error(EISDIR, "'" + path + "' is a folder");
  constexpr uint64_t kMaxReadFile = 1ull << 30;  // whole-file reads are for config files, not disk images
  if (st.size > kMaxReadFile)
    return Status::Error(EFBIG, "'" + path + "' is larger than " + std::to_string(kMaxReadFile) + " bytes");
  std::string out(st.size, '\0');
  VDKIT_ASSIGN_OR_RETURN(
      size_t n, ReadLocked(lock, ino, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size())));
  out.resize(n);
  return out;
}

Status Ext2Volume::Mkdir(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return CreateLocked(parent.first, parent.second, LINUX_S_IFDIR | (mode & 07777), uid, gid).status();
}

Status Ext2Volume::Unlink(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return UnlinkLocked(parent.first, parent.second);
}

Status Ext2Volume::Rmdir(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(path));
  return RmdirLocked(parent.first, parent.second);
}

Status Ext2Volume::Symlink(const std::string& target, const std::string& linkpath) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto parent, ParentOfLocked(linkpath));
  return SymlinkLocked(parent.first, parent.second, target, 0, 0).status();
}

Status Ext2Volume::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(auto a, ParentOfLocked(from));
  VDKIT_ASSIGN_OR_RETURN(auto b, ParentOfLocked(to));
  return RenameLocked(a.first, a.second, b.first, b.second);
}

Status Ext2Volume::Chmod(const std::string& path, uint32_t mode) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return SetAttrLocked(ino, mode, std::nullopt, std::nullopt, std::nullopt, std::nullopt);
}

Status Ext2Volume::Chown(const std::string& path, uint32_t uid, uint32_t gid) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return SetAttrLocked(ino, std::nullopt, uid, gid, std::nullopt, std::nullopt);
}

Result<std::vector<Ext2DirEntry>> Ext2Volume::ReadDir(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, true));
  return ReadDirLocked(ino);
}

Result<std::string> Ext2Volume::ReadLink(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return ReadLinkLocked(ino);
}

Result<std::vector<std::string>> Ext2Volume::ListXattrs(const std::string& path) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return ListXattrsLocked(ino);
}

Result<std::string> Ext2Volume::GetXattr(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return GetXattrLocked(ino, name);
}

Status Ext2Volume::SetXattr(const std::string& path, const std::string& name, std::string_view value) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return SetXattrLocked(ino, name, value);
}

Status Ext2Volume::RemoveXattr(const std::string& path, const std::string& name) {
  std::lock_guard<std::mutex> g(mu_);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t ino, ResolveLocked(path, false));
  return RemoveXattrLocked(ino, name);
}

}  // namespace vdkit
