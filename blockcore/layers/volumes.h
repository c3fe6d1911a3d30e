// Volume groups on a guest's disks: where PVs may be (whole disks, partitions), and LVs named "VG/LV".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/lvm/lvm_volume.h"

namespace vdkit {

// One disk of a guest, with its write layer already in place (so an LV's writes go where the disk's go).
struct GuestDisk {
  std::string name;  // for messages: the path as the user gave it
  std::shared_ptr<BlockDevice> dev;
};

// The places a PV may be: every partition of each disk, or the whole disk when it has no partition table (a PV
// on a whole disk has no table: its label sits in sector 1). A protective or empty table is a table.
Result<std::vector<lvm::PvCandidate>> pv_candidates(const std::vector<GuestDisk>& disks);

// Scans the candidates of `disks` for volume groups (lvm::scan).
Result<lvm::ScanResult> scan_volume_groups(const std::vector<GuestDisk>& disks);

// Splits "VG/LV" (also accepted: "/dev/VG/LV", "/dev/mapper/VG-LV" with lvm2's "--" for a "-" in a name).
struct LvName {
  std::string vg, lv;
};
Result<LvName> parse_lv_name(const std::string& text);

// The LV named `text` among the VGs of `scan`, as a device. Errors name the VGs and LVs there are.
Result<BlockDevicePtr> open_lv(const lvm::ScanResult& scan, const std::string& text);

}  // namespace vdkit
