// `vdkit mount` and `vdkit umount`: choosing the file system, layering writes, the FUSE session and its daemon.
#pragma once

#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/sources/image.h"
#include "blockcore/base/status.h"

namespace vdkit {

struct MountConfig {
  std::string source;
  std::string mountpoint;
  OpenOptions open;          // format, external paths
  bool writable = false;     // --rw
  std::string overlay_path;  // --overlay PATH (a new qcow2 file backed by the source)
  bool in_place = false;     // --in-place: write the source itself
  int partition = 0;         // --partition N; 0 chooses
  std::string lv;            // --lv VG/LV: the file system of this logical volume
  std::vector<std::string> lv_disks;  // --disk PATH: the guest's other disks, for PVs of its VGs
  bool raw = false;          // --raw: disk and partition files
  bool kernel = false;       // --kernel: raw view + loop device + the kernel's driver
  std::string subvol;        // --subvol NAME|ID: the Btrfs subvolume shown (default: the default subvolume)
  bool foreground = false;   // -f
  bool debug = false;        // --debug: libfuse request tracing (implies -f)
  std::string log_path;      // --log FILE: the daemon's messages (default: discarded)
};

// Mounts. In the background (the default) it returns once the mount is ready,
// or with the error that stopped it; with `foreground` it returns after the
// file system is unmounted and everything is flushed.
Status run_mount(const MountConfig& cfg);

// Unmounts MOUNTPOINT (tearing down the loop device and private FUSE mount of
// --kernel) and waits until the daemon has flushed and exited.
Status run_umount(const std::string& mountpoint);

}  // namespace vdkit
