// XFS guest volumes for the fixups: their state for inspection (version, log), the read-only view for planning, and
// writes through the host kernel (guestfs/kernel_mount.h) when the user asked for them with --kernel.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "blockcore/base/block_device.h"
#include "fixups/disk.h"

namespace vdkit::fixups {

// Fills fs.state ("xfs v5 (CRC), 4096-byte blocks, ..."), fs.warnings (a dirty log) and fs.needs_replay from the
// XFS on `view` (the file system's own device). Reads only.
Status describe_xfs(std::shared_ptr<BlockDevice> view, FsInfo& fs);

// Opens the XFS on `view`: read-only through vdkit's own reader (guestfs/xfs) unless `writable` and
// `how.kernel`, when the host kernel mounts it read-write over a private raw view of `view` (which must be a
// copy-on-write overlay, or the image itself with --in-place). A log that needs recovery is replayed by that mount,
// so it is refused unless how.replay_log; a v4 file system the host kernel cannot mount is refused by name.
// closer receives what unmounts and tears down the kernel mount.
Result<GuestFsPtr> open_xfs_guest_fs(std::shared_ptr<BlockDevice> view, const FsInfo& fs, const std::string& what,
                                     bool writable, const OpenGuestOptions& how, std::function<Status()>* closer);

}  // namespace vdkit::fixups
