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

// Inspects the guest on dev (never written): journals that need recovery are replayed into a memory overlay first,
// so the inspection shows what the guest's kernel would see after mounting.
Result<Inspection> inspect_device(std::shared_ptr<BlockDevice> dev);
// The same for a guest on several disks (in the order the guest names them), its VGs spanning them.
Result<Inspection> inspect_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks);

// Inspects the guest on dev and plans the fixups; applies them when `apply`
// (dev must then be writable: an overlay or an image opened for --in-place).
// The file systems are flushed and closed before this returns. Journals: a dry run replays them into memory;
// applying to dev (the image itself) refuses a journal that needs recovery unless options.replay_journal, and a
// journal that would be replayed only in part unless options.force. Files to change on a file system vdkit does
// not write itself (XFS, Btrfs) are written through the host kernel with options.kernel, and otherwise stop the run before
// anything is written. `overlay` says dev is a copy-on-write layer over the source, into which journals are
// replayed and such a mount may replay a dirty log (on the image itself that needs options.replay_journal).
Result<FixupResult> fixup_device(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply,
                                 bool overlay = false);
Result<FixupResult> fixup_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks, const FixupOptions& options,
                                  bool apply, bool overlay = false);

// The same on a guest tree in a host folder.
Result<FixupResult> fixup_folder(const std::string& root, const FixupOptions& options, bool apply);

// For convert --fixup: a copy-on-write memory overlay over src with the
// fixups applied; src is never written (journals are replayed into the
// overlay). result receives the report.
Result<std::shared_ptr<BlockDevice>> make_fixed_overlay(std::shared_ptr<BlockDevice> src, const FixupOptions& options,
                                                        FixupResult* result);
// For a guest on several disks: one overlay per source disk, in order, the fixups applied across them.
Result<std::vector<std::shared_ptr<BlockDevice>>> make_fixed_overlays(
    const std::vector<std::shared_ptr<BlockDevice>>& srcs, const FixupOptions& options, FixupResult* result);

}  // namespace vdkit::fixups
