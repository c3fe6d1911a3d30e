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

}  // namespace vdkit::ext2
