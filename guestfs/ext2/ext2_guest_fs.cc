// Ext2GuestFs: the GuestFs calls mapped onto Ext2Volume's path API.
#include "guestfs/ext2/ext2_guest_fs.h"

#include <sys/stat.h>

#include <algorithm>

namespace vdkit::guestfs {

Result<std::string> Ext2GuestFs::read_file(const std::string& path, size_t max_bytes) {
  VDKIT_ASSIGN_OR_RETURN(Ext2Stat st, vol_->Stat(path));
  if (!S_ISREG(st.mode)) return Status::Error(EISDIR, path + " in " + what_ + " is not a regular file");
  if (st.size > max_bytes)
    return Status::Error(EFBIG, path + " in " + what_ + " holds " + std::to_string(st.size) +
                                    " bytes, more than the limit of " + std::to_string(max_bytes));
  return vol_->ReadFile(path);
}

bool Ext2GuestFs::is_file(const std::string& path) {
  auto st = vol_->Stat(path);
  return st.ok() && S_ISREG(st->mode);
}

bool Ext2GuestFs::is_dir(const std::string& path) {
  auto st = vol_->Stat(path);
  return st.ok() && S_ISDIR(st->mode);
}

std::vector<std::string> Ext2GuestFs::list_dir(const std::string& path) {
  std::vector<std::string> out;
  auto st = vol_->Stat(path);
  if (!st.ok() || !S_ISDIR(st->mode)) return out;
  std::string p = path;
  // ReadDir does not follow a final symlink; Stat did, so resolve it by listing "path/.".
  auto ents = vol_->ReadDir(p == "/" ? p : p + "/.");
  if (!ents.ok()) ents = vol_->ReadDir(p);
  if (!ents.ok()) return out;
  for (auto& e : *ents) out.push_back(e.name);
  std::sort(out.begin(), out.end());
  return out;
}

Status Ext2GuestFs::write_file(const std::string& path, std::string_view data) {
  if (!vol_->writable()) return Status::Error(EROFS, what_ + " is opened read-only; cannot write " + path);
  return vol_->WriteFile(path, data);
}

}  // namespace vdkit::guestfs
