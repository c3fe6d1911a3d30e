// The LVM volume layer's map of unused space: the physical extents of one PV that no LV uses.
#pragma once

#include <cstdint>
#include <memory>

#include "blockcore/lvm/lvm_vg.h"
#include "guestfs/free_space.h"

namespace vdkit::guestfs {

// Ranges are relative to the PV's own device (a partition view, or the whole disk), clipped to `device_size` (a
// truncated image vouches for nothing past its end). A PV that an LV of a type vdkit does not map (thin pool, raid)
// may use is reported as having no unused range at all.
std::unique_ptr<FreeSpaceMap> make_pv_free_space_map(const lvm::VolumeGroup& vg, size_t pv_index,
                                                     uint64_t device_size);

}  // namespace vdkit::guestfs
