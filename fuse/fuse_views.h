// The two FUSE low-level views vdkit mounts: a guest's ext2/3/4 tree, and a folder of raw disk and partition files.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit {

// Userdata of the ext2 view. The volume outlives the session; destroy() closes it
// (flushing everything) and records the result in close_status.
struct Ext2FuseContext {
  Ext2Volume* volume = nullptr;
  bool writable = false;
  double timeout = 1.0;  // entry and attribute cache lifetime in seconds
  Status close_status;
};
const fuse_lowlevel_ops& ext2_fuse_ops();

// One file of the raw view: "disk", "p1", "p2", ...
struct RawFuseEntry {
  std::string name;
  std::shared_ptr<BlockDevice> device;
};
// Userdata of the raw view.
struct RawFuseContext {
  std::vector<RawFuseEntry> entries;
  bool writable = false;
  double timeout = 1.0;
  struct timespec mounted_at{};  // the files' times
  Status flush_status;
};
const fuse_lowlevel_ops& raw_fuse_ops();

}  // namespace vdkit
