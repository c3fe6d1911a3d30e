// The libext2fs io_manager over a vdkit BlockDevice, and the names under which libext2fs finds devices.
#pragma once

#include <ext2fs/ext2fs.h>

#include <memory>
#include <string>

#include "blockcore/base/block_device.h"

namespace vdkit::ext2 {

// The manager to pass to ext2fs_open2 together with a name from register_device.
io_manager block_device_io_manager();

// libext2fs opens devices by name: makes dev openable as the returned
// "vdkit-dev:<n>" (a new name each call) until unregister_device(name).
std::string register_device(std::shared_ptr<BlockDevice> dev);
void unregister_device(const std::string& name);

}  // namespace vdkit::ext2
