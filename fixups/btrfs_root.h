// Btrfs guests: which subvolume the guest boots (rootflags=subvol=/subvolid= on its kernel command lines, subvol=
// in its fstab, else the default subvolume), the subvolume report, and the Btrfs GuestFs for open_volume_fs.
#pragma once

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

// The Btrfs as a read-only GuestFs showing fs.subvolume. writable is refused: vdkit writes a Btrfs only through
// the kernel (--kernel).
Result<GuestFsPtr> open_btrfs_guest_fs(std::shared_ptr<BlockDevice> view, const FsInfo& fs, const std::string& what,
                                       bool writable);

}  // namespace vdkit::fixups
