// A guest on several disks through the one-disk convert: every disk opened, the fixups applied across them (a VG
// spanning two disks, /boot on one and root on the other), then one target per disk in a folder.
#pragma once

#include <string>
#include <vector>

#include "blockcore/convert/convert.h"
#include "fixups/run.h"
#include "guestfs/sparse_map.h"

namespace vdkit::cli {

// Converts `sources` (image files, in the order the guest names its disks) into `folder` (made if missing), each
// target named by target_names() with extension `ext`. With `fixups`, the fixups are planned and applied once over
// memory overlays of all the disks; the sources are only read. On any failure every target this call wrote is
// removed. With `sparse` (sparsify), the map of unused blocks is then taken across all the fixed disks (a VG
// spanning them is read whole) and each disk is copied without its unused ranges; `sparse` receives the maps.
// Returns the target paths.
Result<std::vector<std::string>> convert_guest_disks(const std::vector<std::string>& sources, const std::string& folder,
                                                     const ConvertOptions& opts, const std::string& ext,
                                                     const fixups::FixupOptions* fixups, fixups::FixupResult* result,
                                                     std::vector<ConvertStats>* stats,
                                                     std::vector<guestfs::SparseMap>* sparse = nullptr);

}  // namespace vdkit::cli
