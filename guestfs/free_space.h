// FreeSpaceMap: the byte ranges of a volume's device that the file system (or volume layer) on it does not use.
#pragma once

#include "blockcore/base/byte_ranges.h"
#include "blockcore/base/status.h"

namespace vdkit::guestfs {

// One interface for every guest file-system reader (ext2/3/4 now; XFS and Btrfs as they land) and every volume
// layer (partitions, LVM, swap), so sparsify can skip or zero what nothing will ever read, whatever holds it.
class FreeSpaceMap {
 public:
  virtual ~FreeSpaceMap() = default;
  // Fills `out` (cleared first) with {offset, length} byte ranges, relative to the start of the volume's own
  // device (a partition view: offset 0 is the partition's first byte), sorted, neither overlapping nor touching.
  // Only what the on-disk metadata says is free: a range the reader cannot vouch for (blocks past the end of the
  // file system, a boot block outside its allocation maps) is left out. Data in these ranges may be anything.
  virtual Status unused_ranges(ByteRanges& out) = 0;
};

}  // namespace vdkit::guestfs
