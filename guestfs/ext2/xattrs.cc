// Ext2Volume extended attributes, with POSIX access ACLs folded into the mode bits as the kernel does.
#include <sys/xattr.h>

#include "blockcore/base/bytes.h"
#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit {

namespace {
struct XattrHandle {
  struct ext2_xattr_handle* h = nullptr;
  ~XattrHandle() {
    if (h) ext2fs_xattrs_close(&h);
  }
};

Status open_xattrs(ext2_filsys fs, ext2_ino_t ino, XattrHandle& x) {
  errcode_t err = ext2fs_xattrs_open(fs, ino, &x.h);
  if (err) return ext2_status(fs, err, "opening extended attributes of inode " + std::to_string(ino));
  err = ext2fs_xattrs_read(x.h);
  return ext2_status(fs, err, "reading extended attributes of inode " + std::to_string(ino));
}
}  // namespace

Result<std::vector<std::string>> Ext2Volume::ListXattrsLocked(ext2_ino_t ino) {
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  std::vector<std::string> names;
  auto cb = [](char* name, char*, size_t, void* priv) -> int {
    static_cast<std::vector<std::string>*>(priv)->push_back(name);
    return 0;
  };
  errcode_t err = ext2fs_xattrs_iterate(x.h, cb, &names);
  if (err) return ext2_status(fs_, err, "listing extended attributes of inode " + std::to_string(ino));
  return names;
}

Result<std::string> Ext2Volume::GetXattrLocked(ext2_ino_t ino, const std::string& name) {
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  void* value = nullptr;
  size_t len = 0;
  errcode_t err = ext2fs_xattr_get(x.h, name.c_str(), &value, &len);
  if (err) return ext2_status(fs_, err, "extended attribute '" + name + "'");
  std::string out(static_cast<const char*>(value), len);
  ext2fs_free_mem(&value);
  return out;
}

namespace {
// A POSIX access ACL in the VFS xattr format (le32 version 2, then {le16 tag,
// le16 perm, le32 id} entries): the permission bits it implies, and whether it
// says nothing beyond them (then the kernel stores no ACL, only the mode).
struct AclMode {
  bool valid = false;
  bool equivalent_to_mode = true;
  uint32_t mode = 0;
};
AclMode parse_access_acl(std::string_view v) {
  AclMode r;
  if (v.size() < 4 || (v.size() - 4) % 8 != 0) return r;
  auto u16 = [&](size_t o) { return uint32_t{load_le16(reinterpret_cast<const uint8_t*>(v.data()) + o)}; };
  if (u16(0) != 2 || u16(2) != 0) return r;
  uint32_t user = 0, group = 0, other = 0, mask = 0;
  bool has_mask = false;
  for (size_t o = 4; o < v.size(); o += 8) {
    uint32_t tag = u16(o), perm = u16(o + 2) & 7;
    switch (tag) {
      case 0x01: user = perm; break;
      case 0x04: group = perm; break;
      case 0x20: other = perm; break;
      case 0x10: mask = perm; has_mask = true; r.equivalent_to_mode = false; break;
      case 0x02:
      case 0x08: r.equivalent_to_mode = false; break;
      default: return r;
    }
  }
  r.valid = true;
  r.mode = user << 6 | (has_mask ? mask : group) << 3 | other;
  return r;
}
}  // namespace

Status Ext2Volume::SetXattrLocked(ext2_ino_t ino, const std::string& name, std::string_view value, int flags) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  if (name == "system.posix_acl_access") {
    // As the kernel does: the ACL's owner/group(mask)/other entries are the
    // mode bits, and an ACL that says no more than the mode is not stored.
    AclMode acl = parse_access_acl(value);
    if (!acl.valid) return Status::Invalid("malformed POSIX ACL in system.posix_acl_access");
    ext2_inode_large in;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
    uint32_t mode = (in.i_mode & ~0777u) | acl.mode;
    VDKIT_RETURN_IF_ERROR(SetAttrLocked(ino, mode, std::nullopt, std::nullopt, std::nullopt, std::nullopt));
    if (acl.equivalent_to_mode) {
      auto had = GetXattrLocked(ino, name);
      if (had.ok()) return RemoveXattrLocked(ino, name);
      return Status::Ok();
    }
  }
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  if (flags & (XATTR_CREATE | XATTR_REPLACE)) {
    void* v = nullptr;
    size_t l = 0;
    errcode_t gerr = ext2fs_xattr_get(x.h, name.c_str(), &v, &l);
    if (!gerr) ext2fs_free_mem(&v);
    if ((flags & XATTR_CREATE) && !gerr) return Status::Error(EEXIST, "extended attribute '" + name + "' exists");
    if ((flags & XATTR_REPLACE) && gerr == EXT2_ET_EA_KEY_NOT_FOUND)
      return Status::Error(ENODATA, "no extended attribute '" + name + "'");
  }
  errcode_t err = ext2fs_xattr_set(x.h, name.c_str(), value.data(), value.size());
  if (err) return ext2_status(fs_, err, "setting extended attribute '" + name + "'");
  return TouchLocked(ino, false, true);
}

Status Ext2Volume::RemoveXattrLocked(ext2_ino_t ino, const std::string& name) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  XattrHandle x;
  VDKIT_RETURN_IF_ERROR(open_xattrs(fs_, ino, x));
  void* v = nullptr;
  size_t l = 0;
  errcode_t err = ext2fs_xattr_get(x.h, name.c_str(), &v, &l);
  if (err) return ext2_status(fs_, err, "extended attribute '" + name + "'");
  ext2fs_free_mem(&v);
  err = ext2fs_xattr_remove(x.h, name.c_str());
  if (err) return ext2_status(fs_, err, "removing extended attribute '" + name + "'");
  return TouchLocked(ino, false, true);
}

}  // namespace vdkit
