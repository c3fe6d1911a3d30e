// One inspection-and-fixup pass over a disk or a folder: what `vdkit inspect`, `vdkit fixup` and `convert --fixup` run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "fixups/fixup.h"
#include "fixups/inspect.h"

namespace vdkit::fixups {

struct FixupResult {
  Inspection inspection;
  FixupPlan plan;
};

// Inspects the guest on dev (read-only).
Result<Inspection> inspect_device(std::shared_ptr<BlockDevice> dev);
// The same for a guest on several disks (in the order the guest names them), its VGs spanning them.
Result<Inspection> inspect_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks);

// Inspects the guest on dev and plans the fixups; applies them when `apply`
// (dev must then be writable: an overlay or an image opened for --in-place).
// The file systems are flushed and closed before this returns.
Result<FixupResult> fixup_device(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply);
Result<FixupResult> fixup_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks, const FixupOptions& options,
                                  bool apply);

// The same on a guest tree in a host folder.
Result<FixupResult> fixup_folder(const std::string& root, const FixupOptions& options, bool apply);

// For convert --fixup: a copy-on-write memory overlay over src with the
// fixups applied; src is never written. result receives the report.
Result<std::shared_ptr<BlockDevice>> make_fixed_overlay(std::shared_ptr<BlockDevice> src, const FixupOptions& options,
                                                        FixupResult* result);
// For a guest on several disks: one overlay per source disk, in order, the fixups applied across them.
Result<std::vector<std::shared_ptr<BlockDevice>>> make_fixed_overlays(
    const std::vector<std::shared_ptr<BlockDevice>>& srcs, const FixupOptions& options, FixupResult* result);

}  // namespace vdkit::fixups
