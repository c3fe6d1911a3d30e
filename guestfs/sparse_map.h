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
#include "guestfs/free_space.h"

namespace vdkit::guestfs {

// What one volume (a partition, or the whole disk) contributes to the map.
struct VolumeSparseReport {
  int partition = 0;    // 1-based partition number; 0 for the whole disk
  uint64_t offset = 0;  // bytes from the start of the disk
  uint64_t length = 0;
  std::string type;     // as the prober names it ("ext4", "swap", ...); "" when unknown
  bool mapped = false;  // true: its unused ranges are left out; false: copied whole
  std::string reason;   // why it is copied whole ("unknown content", "the ext4 journal needs recovery", ...)
  uint64_t unused_bytes = 0;
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
// through its header; each new reader (XFS, Btrfs, an LVM physical volume) adds one branch here. A volume that is
// not clean (a journal or log needing recovery, errors recorded) or not known gives no map. `view` shows the volume
// alone (offset 0 is its first byte). Only a read error of the volume is an error. A volume layer's branch (an
// LVM PV) maps the space no LV uses itself and calls this again for each LV's view, by the LV's probed type.
Result<VolumeMap> open_volume_free_space(std::string_view type, std::shared_ptr<BlockDevice> view);

// Builds the map of the whole disk: per partition (or for the whole disk when it has no table) the volume's map;
// the space outside every partition is unused. The partition table's own sectors (MBR, EBR chain, GPT headers and
// entries) and the boot-loader gap before the first partition are never unused, even where a volume covering them
// calls them free. Nothing at all is left out (each volume's reason says why) when partitions overlap, or when a
// partition table and a whole-disk file system or PV are both present (volumes then starts with a partition-0
// entry naming the whole-disk type).
Result<SparseMap> build_sparse_map(std::shared_ptr<BlockDevice> disk);

// sparsify's device: `disk` with every unused range of its map reading as zeros and reported as a hole (never read
// from `disk`); `map` receives the map. Read-only.
Result<std::shared_ptr<BlockDevice>> make_sparsified_device(std::shared_ptr<BlockDevice> disk, SparseMap* map);

// One line per volume ("partition 1 (ext4, 1 GiB): 700 MiB unused, left out"), for people and logs.
std::string sparse_summary(const SparseMap& m);

}  // namespace vdkit::guestfs
