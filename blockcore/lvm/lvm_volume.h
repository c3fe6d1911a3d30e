// Volume groups found on a guest's disks, and their logical volumes as BlockDevices. Nothing is activated:
// the mapping from LV to PV bytes is done here, in userspace, for reads and writes alike.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/byte_ranges.h"
#include "blockcore/lvm/lvm_format.h"
#include "blockcore/lvm/lvm_vg.h"

namespace vdkit::lvm {

// A place a PV may be: a whole disk or one partition of it. `name` is for messages and reports
// ("'web1-disk1.vmdk' partition 2").
struct PvCandidate {
  std::string name;
  int disk_index = 0;  // which of the guest's disks
  int partition = 0;   // 0: the whole disk
  std::shared_ptr<BlockDevice> dev;
};

struct FoundVg {
  VolumeGroup vg;
  // Per PV of vg.pvs (same index): where it was found, or nullopt when no given disk holds it.
  std::vector<std::optional<PvCandidate>> pv_devices;
  std::string metadata_from;  // the candidate whose copy (highest seqno) was taken
};

struct ScanResult {
  std::vector<FoundVg> vgs;
  // Copies that were skipped (bad CRC, unparsable text): the scan goes on with the others, and says so.
  std::vector<std::string> warnings;
};

// Reads the label of every candidate, every metadata copy on those that are PVs, groups them by VG UUID and takes
// the valid copy with the highest seqno. Only I/O errors fail the scan. Two VGs of one name are reported as such.
Result<ScanResult> scan(const std::vector<PvCandidate>& candidates);

// The LV as a device: reads and writes go to its PVs' devices through the segment mapping. Refused with an error
// naming the LV and its type for anything but linear and striped segments, and naming the missing PV when one is
// not among the candidates.
Result<BlockDevicePtr> open_logical_volume(const FoundVg& vg, const std::string& lv_name);

// Byte ranges of one PV device that no LV uses: the extents of the PV outside every segment. The label, the
// metadata areas and anything before pe_start are used (by LVM itself). For the free-space map.
struct PvFreeRange {
  uint64_t offset = 0;  // bytes from the start of the PV device
  uint64_t length = 0;
};
std::vector<PvFreeRange> unused_extents(const VolumeGroup& vg, size_t pv_index);

// Where byte ranges of an LV (offsets from the LV's first byte, sorted, apart) lie on PV `pv_index`: byte ranges of
// that PV's device, sorted by LV order (normalize them to merge). Parts on other PVs are left out. Only for an LV
// whose `refusal` is empty (linear and striped segments, checked against the PVs' extents).
ByteRanges lv_ranges_on_pv(const VolumeGroup& vg, const LogicalVolume& lv, size_t pv_index, const ByteRanges& lv_ranges);

}  // namespace vdkit::lvm
