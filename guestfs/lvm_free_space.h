// The LVM volume layer's map of unused space: the physical extents of a PV that no LV uses, and the unused blocks of
// the LVs on it, found by each LV's own content.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "blockcore/lvm/lvm_vg.h"
#include "blockcore/lvm/lvm_volume.h"
#include "guestfs/free_space.h"
#include "guestfs/sparse_map.h"

namespace vdkit::guestfs {

// Ranges are relative to the PV's own device (a partition view, or the whole disk), clipped to `device_size` (a
// truncated image vouches for nothing past its end). A PV that an LV of a type vdkit does not map (thin pool, raid)
// may use is reported as having no unused range at all.
std::unique_ptr<FreeSpaceMap> make_pv_free_space_map(const lvm::VolumeGroup& vg, size_t pv_index,
                                                     uint64_t device_size);

// One PV's map for sparsify: byte ranges of the PV's device.
struct PvSparseMap {
  std::string vg;
  ByteRanges free_extents;  // extents no LV uses
  struct Lv {
    LvSparseReport report;
    ByteRanges unused;  // the LV's unused blocks that lie on this PV
  };
  std::vector<Lv> lvs;  // every LV with extents on this PV, in the VG's order
};

// Maps the PVs of the VGs one scan found. Each LV's content is read and mapped once, however many PVs it spans.
class LvmSparseMapper {
 public:
  explicit LvmSparseMapper(lvm::ScanResult scan) : scan_(std::move(scan)) {}

  // The PV found on disk `disk_index`, partition `partition` (0: the whole disk), or nullopt with `why` set when no
  // VG of the scan has a PV there (its metadata could not be read). Only a read error is an error. The label and
  // everything outside the extents (pe_start, the metadata areas) is never in a range.
  Result<std::optional<PvSparseMap>> map_pv(int disk_index, int partition, std::string* why);

 private:
  struct LvMap {
    std::string type, reason;  // reason empty: mapped
    ByteRanges unused;         // offsets in the LV
  };
  Result<const LvMap*> lv_map(const lvm::FoundVg& f, const lvm::LogicalVolume& lv);

  lvm::ScanResult scan_;
  std::map<std::pair<std::string, std::string>, LvMap> lvs_;  // by VG UUID and LV name
};

}  // namespace vdkit::guestfs
