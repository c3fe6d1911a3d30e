// The libext2fs io_manager over a vdkit BlockDevice, and the names under which libext2fs finds devices.
#pragma once

#include <ext2fs/ext2fs.h>

#include <memory>
#include <string>

#include "blockcore/base/block_device.h"
#include "guestfs/ext2/errors.h"

namespace vdkit::ext2 {

// The manager to pass to ext2fs_open2 together with a name from register_device. Its callbacks are noexcept: an
// exception from the device is logged to stderr, recorded, and returned as an errcode_t.
io_manager block_device_io_manager();

// libext2fs opens devices by name: makes dev openable as the returned
// "vdkit-dev:<n>" (a new name each call) until unregister_device(name).
// Every channel opened on the name records its device failures in `errors`.
std::string register_device(std::shared_ptr<BlockDevice> dev, std::shared_ptr<DeviceErrors> errors);
void unregister_device(const std::string& name);

// ext2fs_open2 on a registered name, plus the superblock geometry that libext2fs trusts but e2fsck refuses as fatal
// (a first data block other than the one the block size implies makes ext2fs_read_bitmaps copy past its buffers).
// On failure *out is null and nothing is left open.
Status open_registered(const std::string& name, int flags, DeviceErrors* errors, ext2_filsys* out);

}  // namespace vdkit::ext2
