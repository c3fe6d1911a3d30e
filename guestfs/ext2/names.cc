// Ext2Volume names: resolving guest paths, looking up entries, listing folders, reading symlinks.
#include <algorithm>

#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"
#include "guestfs/ext2/inode_codec.h"

namespace vdkit {

using namespace ext2;

Result<ext2_ino_t> Ext2Volume::ResolveLocked(const std::string& path, bool follow_last) {
  if (path.empty() || path[0] != '/') return Status::Invalid("guest path '" + path + "' is not absolute");
  if (path.find_first_not_of('/') == std::string::npos) return ext2_ino_t{EXT2_ROOT_INO};
  ext2_ino_t ino = 0;
  errcode_t err = follow_last ? ext2fs_namei_follow(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino)
                              : ext2fs_namei(fs_, EXT2_ROOT_INO, EXT2_ROOT_INO, path.c_str(), &ino);
  if (err) return ext2_status(fs_, err, "looking up '" + path + "'");
  return ino;
}

Result<ext2_ino_t> Ext2Volume::LookupLocked(ext2_ino_t dir, const std::string& name) {
  if (name.size() > EXT2_NAME_LEN) return Status::Error(ENAMETOOLONG, "file name longer than 255 bytes");
  ext2_ino_t ino = 0;
  errcode_t err = ext2fs_lookup(fs_, dir, name.data(), static_cast<int>(name.size()), nullptr, &ino);
  if (err) return ext2_status(fs_, err, "looking up '" + name + "' in folder inode " + std::to_string(dir));
  return ino;
}

Result<std::pair<ext2_ino_t, std::string>> Ext2Volume::ParentOfLocked(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return Status::Invalid("guest path '" + path + "' is not absolute");
  std::string name = p.substr(slash + 1);
  VDKIT_RETURN_IF_ERROR(check_name(name));
  std::string parent = slash == 0 ? "/" : p.substr(0, slash);
  VDKIT_ASSIGN_OR_RETURN(ext2_ino_t dir, ResolveLocked(parent, true));
  return std::make_pair(dir, name);
}

Result<std::vector<Ext2DirEntry>> Ext2Volume::ReadDirLocked(ext2_ino_t dir) {
  struct Ctx {
    std::vector<Ext2DirEntry> out;
  } ctx;
  auto cb = [](ext2_ino_t, int entry, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE) return 0;
    int len = ext2fs_dirent_name_len(d);
    Ext2DirEntry e;
    e.name.assign(d->name, len);
    e.ino = d->inode;
    e.type = dt_of_ft(ext2fs_dirent_file_type(d));
    static_cast<Ctx*>(priv)->out.push_back(std::move(e));
    return 0;
  };
  errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, cb, &ctx);
  if (err) return ext2_status(fs_, err, "reading folder inode " + std::to_string(dir));
  return std::move(ctx.out);
}

Result<std::string> Ext2Volume::ReadLinkLocked(ext2_ino_t ino) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  if (!LINUX_S_ISLNK(in.i_mode)) return Status::Invalid("inode " + std::to_string(ino) + " is not a symlink");
  uint64_t size = EXT2_I_SIZE(&in);
  // A symlink target is at most one block (PATH_MAX on Linux); anything larger is corrupt.
  if (size >= fs_->blocksize || size >= 4096)
    return Status::Error(EIO, "symlink inode " + std::to_string(ino) + " has a corrupt size " + std::to_string(size));
  if (ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in)))
    return std::string(reinterpret_cast<const char*>(in.i_block), size);
  std::string out(size, '\0');
  std::unique_lock<std::mutex> dummy;
  VDKIT_ASSIGN_OR_RETURN(size_t n,
                         ReadLocked(dummy, ino, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), size)));
  out.resize(n);
  return out;
}

}  // namespace vdkit
