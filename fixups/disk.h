// A guest disk: its file systems (partition table + superblock probe), device-name mapping, and the guest tree.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/block_device.h"
#include "fixups/guest_fs.h"
#include "fixups/rules/device_names.h"

namespace vdkit::fixups {

// A Btrfs subvolume, as inspection reports it (fixups/btrfs_root.cc fills these).
struct SubvolumeInfo {
  uint64_t id = 0;
  std::string path;        // from the top level: "@/.snapshots/1/snapshot"; "" for the top level (id 5)
  bool is_default = false;  // what mount shows without subvol=
  bool booted = false;      // the guest's root: named by rootflags=/fstab, else the default
  bool snapshot = false;    // a snapshot of another subvolume (parent UUID), or under snapper's .snapshots
  bool readonly = false;
};

// A file system found on the guest's disks: on a partition, a whole disk, or an LVM2 logical volume.
struct FsInfo {
  int disk = 0;       // which of the guest's disks (source order); for an LV, the disk of its first PV
  int partition = 0;  // 1-based partition number; 0 for a file system on the whole disk (or an LV)
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string type;  // as guestfs::probe_fs (blkid's TYPE): "ext4", "xfs", "swap", "LVM2_member", ...; "" when unknown
  std::string uuid;  // as blkid prints it
  std::string label;
  std::string mount_point;  // where the guest's fstab mounts it, filled by open_guest
  // Filled by open_guest for file systems vdkit reads but does not write itself (XFS, Btrfs): what they are
  // ("xfs v5 (CRC), 4096-byte blocks, ..., log clean"), warnings for the report (a dirty log, a log tree awaiting
  // replay), and whether a writing mount would replay a log.
  std::string state;
  std::vector<std::string> warnings;
  bool needs_replay = false;
  // Btrfs: the subvolume the guest boots, which open_volume_fs shows ("" = top level; an id or path), why it was
  // chosen, and every subvolume.
  std::string subvolume;
  std::string subvolume_reason;
  std::vector<SubvolumeInfo> subvolumes;
  std::string lv;           // "VG/LV" when the file system is on a logical volume
  std::string lv_dm_uuid;   // "LVM-<VG UUID><LV UUID>" without dashes, as /dev/disk/by-id/dm-uuid-* names it
  std::shared_ptr<BlockDevice> volume;  // the LV's device (reads and writes go through its segments)
  // Whether two FsInfo describe the same file system (disk, partition, LV), whatever the probe found.
  bool same_place(const FsInfo& o) const {
    return disk == o.disk && partition == o.partition && offset == o.offset && lv == o.lv;
  }
};

// How open_guest writes file systems vdkit only reads (XFS, Btrfs): through the host kernel when `kernel`
// (--kernel), which replays a log only when `replay_log` (the device is a copy-on-write overlay, or
// --replay-journal).
struct OpenGuestOptions {
  bool kernel = false;
  bool replay_log = false;
  // Open ext2/3/4 for writing even where the pre-write consistency checks object (--force).
  bool force = false;
  // Mount points of such file systems that get written; the others stay read-only (not mounted by the kernel).
  std::vector<std::string> kernel_mounts;
};

// Whether writing this file system needs the host kernel (vdkit reads it but does not write it itself).
bool needs_kernel_to_write(std::string_view type);

// Reads the partition table and probes each partition (or the whole disk when
// there is no table) with guestfs::probe_fs.
Result<std::vector<FsInfo>> probe_filesystems(BlockDevice& dev);

// The same over all the disks of a guest (disk = index in `disks`), then every visible LVM2 logical volume found on
// them (LVs that cannot be opened, a thin LV or one whose PV is on no given disk, are listed with an empty type).
// `notes` receives what the LVM scan says about them.
// Where a file system is, for messages: "partition 2 of disk 1", "the whole disk", "LV vg/root".
std::string place_of(const FsInfo& fs);

Result<std::vector<FsInfo>> probe_guest_filesystems(const std::vector<std::shared_ptr<BlockDevice>>& disks,
                                                    std::vector<std::string>* notes);

// How fixed device names are written.
enum class DeviceNaming { kUuid, kLabel, kVd };
std::optional<DeviceNaming> parse_device_naming(std::string_view s);

// Maps the guest's device names (/dev/xvda1, /dev/sda1, /dev/hda1, /dev/xvde
// for a partitionless disk) of the disk `disk` (letter index: the disk the
// guest calls its boot disk) to UUID=, LABEL= or /dev/vdX names. A file system
// without a UUID (or label) falls back to the next form; names of other disks
// and of partitions that hold no known file system map to nothing.
class DeviceMapper {
 public:
  // disk == kAnyDisk matches /dev names of every disk (to find what fstab mounts);
  // any other negative value matches none.
  static constexpr int kAnyDisk = -1;
  DeviceMapper(std::vector<FsInfo> fs, DeviceNaming naming, int disk)
      : fs_(std::move(fs)), naming_(naming), disk_(disk) {}
  std::optional<std::string> map(std::string_view device) const;
  // The file system a device name (/dev/..., UUID=..., LABEL=...) stands for.
  const FsInfo* find(std::string_view device) const;
  DeviceMapFn fn() const {
    return [this](std::string_view d) { return map(d); };
  }

 private:
  std::vector<FsInfo> fs_;
  DeviceNaming naming_;
  int disk_;
};

// The guest as one tree: the file system holding /etc/fstab is /, and the
// other ext2/3/4 file systems fstab names are mounted where it says.
struct GuestDisk {
  std::shared_ptr<BlockDevice> device;  // the first disk
  std::vector<std::shared_ptr<BlockDevice>> disks;
  std::vector<std::string> notes;       // what the LVM scan said (refused LVs, skipped metadata copies)
  std::vector<FsInfo> filesystems;
  std::unique_ptr<MountedGuestFs> fs;
  // Flushes and closes every file system (call before the device goes).
  Status close();
  ~GuestDisk();
  std::vector<std::function<Status()>> closers;
};

// Opens the guest on its disks (in the order the guest names them: xvda, xvdb, ...); writable needs writable
// disks (overlays, or images opened with OpenOptions::writable). The root is the first file system vdkit reads
// with an /etc/fstab, on a partition, a whole disk or an LV; fstab's other entries are mounted through any disk.
Result<std::unique_ptr<GuestDisk>> open_guest(std::vector<std::shared_ptr<BlockDevice>> disks, bool writable,
                                              const OpenGuestOptions& how = {});
inline Result<std::unique_ptr<GuestDisk>> open_guest(std::shared_ptr<BlockDevice> dev, bool writable,
                                                     const OpenGuestOptions& how = {}) {
  return open_guest(std::vector<std::shared_ptr<BlockDevice>>{std::move(dev)}, writable, how);
}

// Whether open_volume_fs can open a file system of this type (blkid's TYPE name).
bool can_open_fs(std::string_view type);

// Opens one file system of dev as a GuestFs, by its probed type: ext2/3/4 through libext2fs (read-write when
// asked), XFS and Btrfs through guestfs/xfs and guestfs/btrfs (read-only; read-write through the kernel with
// how.kernel); every reader vdkit adds for other types plugs in here, so open_guest and the front ends need no
// change. closer, when set, receives what flushes and closes the file system.
Result<GuestFsPtr> open_volume_fs(std::shared_ptr<BlockDevice> dev, const FsInfo& fs, bool writable,
                                  std::function<Status()>* closer, const OpenGuestOptions& how = {});

}  // namespace vdkit::fixups
