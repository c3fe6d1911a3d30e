// A guest on several disks through the one-disk convert: every disk opened, the fixups applied across them (a VG
// spanning two disks, /boot on one and root on the other), then one target per disk in a folder.
#pragma once

#include <string>
#include <vector>

#include "blockcore/convert/convert.h"
#include "fixups/run.h"

namespace vdkit::cli {

// Converts `sources` (image files, in the order the guest names its disks) into `folder` (made if missing), each
// target named by target_names() with extension `ext`. With `fixups`, the fixups are planned and applied once over
// memory overlays of all the disks; the sources are only read. On any failure every target this call wrote is
// removed. Returns the target paths.
Result<std::vector<std::string>> convert_guest_disks(const std::vector<std::string>& sources, const std::string& folder,
                                                     const ConvertOptions& opts, const std::string& ext,
                                                     const fixups::FixupOptions* fixups, fixups::FixupResult* result,
                                                     std::vector<ConvertStats>* stats);

}  // namespace vdkit::cli
