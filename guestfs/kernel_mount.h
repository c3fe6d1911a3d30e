// KernelMount: a guest file system mounted by the host kernel over a private raw view of a BlockDevice (the one
// place in vdkit that calls mount(2) and sets up loop devices).
//
// Used where vdkit cannot write a file system itself (XFS, Btrfs) and the user asked for --kernel, and by
// `vdkit mount --kernel`. The device is usually the memory or qcow2 overlay of the device stack, so everything the
// kernel writes (a log replay included) lands there and never in the source.
//
// The pieces, set up in this order and torn down in reverse on every exit path (Unmount, the destructor, and a
// SIGINT/SIGTERM/SIGHUP whose disposition was the default):
//   1. a private folder (/run/vdkit/kmount.XXXXXX for root) holding "raw/" and, without a mount_point, "mnt/";
//   2. a FUSE file system served by a thread of this process at raw/, holding one file, raw/disk, whose bytes are
//      the device's (reads, writes and fsync go to the BlockDevice);
//   3. a loop device over raw/disk (LOOP_CONFIGURE, autoclear, read-only unless writable);
//   4. the kernel's mount of the loop device with the given type and options.
// Needs root (EPERM otherwise) and /dev/fuse and /dev/loop-control.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"
#include "guestfs/guest_fs.h"

namespace vdkit::guestfs {

struct KernelMountOptions {
  std::string fs_type;               // the kernel's name: "xfs", "btrfs", "ext4"
  std::vector<std::string> options;  // file-system options: "subvol=@", "norecovery", "nologreplay", "nouuid"
  bool writable = false;             // read-write mount over a writable device; else MS_RDONLY and a read-only loop
  std::string what;                  // "xfs on partition 2", for messages
  // Where to mount: empty for a private folder (the fixups), or a folder the caller owns (`vdkit mount --kernel`).
  std::string mount_point;
};

class KernelMount {
 public:
  // Sets everything up; on any error what was set up so far is torn down and the error names the step.
  static Result<std::unique_ptr<KernelMount>> Mount(std::shared_ptr<BlockDevice> device,
                                                    const KernelMountOptions& options);
  ~KernelMount();  // Unmount(), its error logged to stderr
  KernelMount(const KernelMount&) = delete;
  KernelMount& operator=(const KernelMount&) = delete;

  const std::string& mount_point() const { return mount_point_; }
  const std::string& loop_device() const { return loop_name_; }
  // The private folder whose raw/ holds the FUSE view (for `vdkit mount`'s state file).
  const std::string& private_dir() const { return dir_; }

  // The mounted tree as a GuestFs (open_folder_guest over the mount point); valid until Unmount. Its describe()
  // names the file system and the loop device.
  Result<GuestFsPtr> open_guest_fs();

  // Unmounts the file system (EBUSY while something uses it: nothing else is torn down then, so it can be
  // retried), detaches the loop device, stops the FUSE view, removes the private folders and flushes the device
  // when writable. A mount point someone else already unmounted is fine. Idempotent.
  Status Unmount();

 private:
  KernelMount() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string dir_, mount_point_, loop_name_;
};

// Unmounts a mount point a KernelMount of another process made (`vdkit umount` of a `vdkit mount --kernel`), so
// that process's Unmount finds it gone; EBUSY while in use, EINVAL when it is not a mount point.
Status unmount_kernel_mount_point(const std::string& mount_point);

}  // namespace vdkit::guestfs
