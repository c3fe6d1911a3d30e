// The map of a whole guest disk's unused bytes, from metadata only: what sparsify may leave out of a copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/byte_ranges.h"
#include "blockcore/base/status.h"
#include "blockcore/layers/volumes.h"
#include "guestfs/free_space.h"

namespace vdkit::guestfs {

// One LV's part in an LVM PV's map: its own unused blocks (by its probed content), where they lie on that PV.
struct LvSparseReport {
  std::string name;     // "VG/LV"
  std::string type;     // its probed content ("ext4", "swap", ...); "" when unknown or not read
  uint64_t length = 0;  // the LV's size
  bool mapped = false;  // false: its extents are copied whole
  std::string reason;   // why ("a hidden part of another LV", "PV ... is not among the given disks", ...)
  uint64_t unused_bytes = 0;  // left out of this PV (an LV on several PVs reports its part on each)
};

// What one volume (a partition, or the whole disk) contributes to the map.
struct VolumeSparseReport {
  int partition = 0;    // 1-based partition number; 0 for the whole disk
  uint64_t offset = 0;  // bytes from the start of the disk
  uint64_t length = 0;
  std::string type;     // as the prober names it ("ext4", "swap", ...); "" when unknown
  bool mapped = false;  // true: its unused ranges are left out; false: copied whole
  std::string reason;   // why it is copied whole ("unknown content", "the ext4 journal needs recovery", ...)
  uint64_t unused_bytes = 0;
  // An LVM PV whose VG was found: the VG, the bytes of its extents no LV uses (left out), and each LV with extents
  // on it. Its LVs' unused blocks are in unused_bytes too.
  std::string vg;
  uint64_t free_extent_bytes = 0;
  std::vector<LvSparseReport> lvs;
};

struct SparseMap {
  ByteRanges unused;  // byte ranges of the whole disk, sorted, not touching
  std::vector<VolumeSparseReport> volumes;
  uint64_t outside_partitions_bytes = 0;  // unused bytes outside every partition (part of `unused`)
  uint64_t unused_bytes() const;
};

// What one volume's map came to: a map, or the reason there is none (the volume is then copied whole).
struct VolumeMap {
  std::unique_ptr<FreeSpaceMap> map;
  std::string copied_whole_reason;
};

// The one dispatch by probed type (guestfs::probe_fs's name): ext2/3/4 through Ext2Volume's block bitmap, swap
// through its header, XFS, Btrfs; each new reader adds one branch here. A volume that is not clean (a journal or log
// needing recovery, errors recorded) or not known gives no map. `view` shows the volume alone (offset 0 is its
// first byte). Only a read error of the volume is an error. An LVM PV gives no map here: it is mapped with its VG,
// whose PVs may be on other disks, by build_sparse_map(s), which call this for each LV's view.
Result<VolumeMap> open_volume_free_space(std::string_view type, std::shared_ptr<BlockDevice> view);

// Builds the map of the whole disk: per partition (or for the whole disk when it has no table) the volume's map;
// the space outside every partition is unused. The partition table's own sectors (MBR, EBR chain, GPT headers and
// entries) and the boot-loader gap before the first partition are never unused, even where a volume covering them
// calls them free. Nothing at all is left out (each volume's reason says why) when partitions overlap, or when a
// partition table and a whole-disk file system or PV are both present (volumes then starts with a partition-0
// entry naming the whole-disk type).
//
// An LVM2 PV (a partition, or the whole disk) is mapped with its VG: the extents no LV uses, and each LV's own
// unused blocks (its probed content's map, as above) where they lie on this PV. Kept: everything before the first
// extent and after the last, the metadata areas, and the extents of an LV vdkit does not map (a hidden part of
// another LV, one another LV reads such as a snapshot's origin, a segment type other than linear/striped, one with a
// PV on none of the disks), so a PV whose VG spans other disks needs them: build_sparse_maps.
Result<SparseMap> build_sparse_map(std::shared_ptr<BlockDevice> disk);

// A guest on several disks (in the order the guest names them): one map per disk, each as build_sparse_map's, with
// every VG read across all the disks (an LV spanning two disks is mapped on both; one whose PV is on none of them is
// kept whole).
Result<std::vector<SparseMap>> build_sparse_maps(const std::vector<GuestDisk>& disks);

// sparsify's device: `disk` with every unused range of its map reading as zeros and reported as a hole (never read
// from `disk`); `map` receives the map. Read-only.
Result<std::shared_ptr<BlockDevice>> make_sparsified_device(std::shared_ptr<BlockDevice> disk, SparseMap* map);
// The same for each disk of a guest, with the maps of build_sparse_maps (`maps` receives them, in disk order).
Result<std::vector<std::shared_ptr<BlockDevice>>> make_sparsified_devices(const std::vector<GuestDisk>& disks,
                                                                         std::vector<SparseMap>* maps);

// One line per volume ("partition 1 (ext4, 1 GiB): 700 MiB unused, left out"), and an indented one per LV of a PV,
// for people and logs.
std::string sparse_summary(const SparseMap& m);

}  // namespace vdkit::guestfs
