// Btrfs guests: which subvolume the guest boots (rootflags=subvol=/subvolid= on its kernel command lines, subvol=
// in its fstab, else the default subvolume), the subvolume report, and the Btrfs GuestFs for open_volume_fs.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "blockcore/base/block_device.h"
#include "fixups/disk.h"
#include "fixups/guest_fs.h"

namespace vdkit::fixups {

// The subvolume a kernel command line or fstab option list names: "subvol=X" gives X, "subvolid=N" gives N
// (subvolid wins, as the kernel checks it against subvol=); nullopt when neither is there.
std::optional<std::string> subvol_in_options(std::string_view options);
// The same for every rootflags= on a kernel command line or a boot loader config.
std::optional<std::string> subvol_in_rootflags(std::string_view text);

// Fills fs.subvolume, subvolume_reason, subvolumes and warnings for the Btrfs on `view` (the file system's own
// device). Errors are the reader's (a damaged Btrfs).
Status describe_btrfs(std::shared_ptr<BlockDevice> view, FsInfo& fs);

// Opens the Btrfs on `view` showing fs.subvolume (the one the guest boots): read-only through vdkit's own reader
// unless `writable` and `how.kernel`, when the host kernel mounts that subvolume (subvolid=) read-write over a
// private raw view of `view` (a copy-on-write overlay, or the image itself with --in-place); other subvolumes and
// snapshots are not mounted, so nothing else is edited. A log tree the mount would replay is refused unless
// how.replay_log. Without how.kernel, writable is refused naming the file system. closer receives the unmount.
Result<GuestFsPtr> open_btrfs_guest_fs(std::shared_ptr<BlockDevice> view, const FsInfo& fs, const std::string& what,
                                       bool writable, const OpenGuestOptions& how, std::function<Status()>* closer);

}  // namespace vdkit::fixups
