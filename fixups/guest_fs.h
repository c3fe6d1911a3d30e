// The fixups' names for the guest file-system layer (guestfs/guest_fs.h), used unqualified by inspection and rules.
#pragma once

#include "guestfs/guest_fs.h"

namespace vdkit::fixups {

using guestfs::GuestFs;
using guestfs::GuestFsPtr;
using guestfs::guest_dirname;
using guestfs::guest_join;
using guestfs::kMaxGuestFileBytes;
using guestfs::kMaxSymlinkHops;
using guestfs::MountedGuestFs;
using guestfs::normalize_guest_path;
using guestfs::open_folder_guest;

}  // namespace vdkit::fixups
