// XFS guest volumes for the fixups: inspection state, the read-only reader, and kernel writes with --kernel.
#include "fixups/xfs_volume.h"

#include "guestfs/kernel_mount.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::fixups {

Status describe_xfs(std::shared_ptr<BlockDevice> view, FsInfo& fs) {
  const std::string what = fs.partition ? "partition " + std::to_string(fs.partition) : "the whole disk";
  VDKIT_ASSIGN_OR_RETURN(auto tree, guestfs::xfs::XfsTree::Open(std::move(view), what));
  fs.state = "xfs " + tree->state();
  fs.needs_replay = tree->log_dirty();
  for (auto& w : tree->warnings()) fs.warnings.push_back(std::move(w));
  return Status::Ok();
}

Result<GuestFsPtr> open_xfs_guest_fs(std::shared_ptr<BlockDevice> view, const FsInfo& fs, const std::string& what,
                                     bool writable, const OpenGuestOptions& how, std::function<Status()>* closer) {
  const std::string where = fs.partition ? "partition " + std::to_string(fs.partition) : "the whole disk";
  auto tree = guestfs::xfs::XfsTree::Open(view, where);
  if (!tree.ok()) return tree.status().Context("opening " + what);
  if (!writable || !how.kernel) return guestfs::make_tree_guest_fs(*tree);

  // Writes go through the kernel's own XFS driver.
  if ((*tree)->log_dirty() && !how.replay_log)
    return Status::Error(EROFS, "the XFS log of " + what +
                                    " needs recovery, which the kernel mount would replay into the image itself; "
                                    "add --replay-journal to allow that with --in-place (or write to a copy with -o)");
  if (!closer) return Status::Invalid("writing " + what + " through the kernel needs a closer for its mount");
  guestfs::KernelMountOptions ko;
  ko.fs_type = "xfs";
  ko.options = {"nouuid"};  // the source may be mounted elsewhere on this host under the same UUID
  ko.writable = true;
  ko.what = what;
  auto km = guestfs::KernelMount::Mount(view, ko);
  if (!km.ok()) {
    if ((*tree)->superblock().version() == 4)
      return Status::Unsupported(what + " is XFS v4 (no metadata CRCs), which the host kernel refused to mount "
                                        "(kernels built without CONFIG_XFS_SUPPORT_V4 cannot), so vdkit cannot "
                                        "write it; inspection and --dry-run work without --kernel (" +
                                 km.status().message() + ")");
    return km.status().Context("writing " + what + " through the host kernel (--kernel)");
  }
  std::shared_ptr<guestfs::KernelMount> mount(std::move(*km));
  auto gfs = mount->open_guest_fs();
  if (!gfs.ok()) return gfs.status();
  *closer = [mount] { return mount->Unmount(); };
  return std::move(*gfs);
}

}  // namespace vdkit::fixups
