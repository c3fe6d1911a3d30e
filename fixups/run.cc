// The inspect/fixup pass: opens the guest's file systems on a device (or a folder), plans, applies, closes.
#include "fixups/run.h"

#include "blockcore/layers/overlay.h"

namespace vdkit::fixups {

Result<Inspection> inspect_device(std::shared_ptr<BlockDevice> dev) { return inspect_devices({std::move(dev)}); }

Result<Inspection> inspect_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks) {
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(disks, false));
  Inspection in = inspect_guest(*guest->fs, guest->filesystems);
  in.volume_notes = guest->notes;
  VDKIT_RETURN_IF_ERROR(guest->close());
  return in;
}

Result<FixupResult> fixup_device(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply) {
  return fixup_devices({std::move(dev)}, options, apply);
}

Result<FixupResult> fixup_devices(const std::vector<std::shared_ptr<BlockDevice>>& dev, const FixupOptions& options,
                                  bool apply) {
  for (size_t i = 0; i < dev.size(); ++i)
    if (apply && !dev[i]->caps().writable)
      return Status::Error(EROFS, dev.size() == 1 ? std::string("the disk is not writable")
                                                  : "disk " + std::to_string(i) + " is not writable");
  // Plan on a read-only view first: a guest with nothing to change is never
  // opened for writing, so not even a superblock time changes.
  FixupResult r;
  {
    VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(dev, false));
    r.inspection = inspect_guest(*guest->fs, guest->filesystems);
    r.inspection.volume_notes = guest->notes;
    r.plan = plan_fixups(*guest->fs, r.inspection, options);
    VDKIT_RETURN_IF_ERROR(guest->close());
  }
  if (!apply || r.plan.changes.empty()) return r;
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(dev, true));
  Status st = apply_fixups(*guest->fs, r.plan, options);
  Status closed = guest->close();
  if (!st.ok()) return st;
  if (!closed.ok()) return closed.Context("closing the guest file systems");
  return r;
}

Result<FixupResult> fixup_folder(const std::string& root, const FixupOptions& options, bool apply) {
  VDKIT_ASSIGN_OR_RETURN(GuestFsPtr fs, open_folder_guest(root, apply));
  FixupResult r;
  r.inspection = inspect_guest(*fs, {});
  r.plan = plan_fixups(*fs, r.inspection, options);
  if (apply) VDKIT_RETURN_IF_ERROR(apply_fixups(*fs, r.plan, options));
  return r;
}

Result<std::shared_ptr<BlockDevice>> make_fixed_overlay(std::shared_ptr<BlockDevice> src, const FixupOptions& options,
                                                        FixupResult* result) {
  std::shared_ptr<BlockDevice> overlay = make_memory_overlay(std::move(src));
  VDKIT_ASSIGN_OR_RETURN(FixupResult r, fixup_device(overlay, options, true));
  if (result) *result = std::move(r);
  return overlay;
}

Result<std::vector<std::shared_ptr<BlockDevice>>> make_fixed_overlays(
    const std::vector<std::shared_ptr<BlockDevice>>& srcs, const FixupOptions& options, FixupResult* result) {
  std::vector<std::shared_ptr<BlockDevice>> overlays;
  for (const auto& s : srcs) overlays.push_back(make_memory_overlay(s));
  VDKIT_ASSIGN_OR_RETURN(FixupResult r, fixup_devices(overlays, options, true));
  if (result) *result = std::move(r);
  return overlays;
}

}  // namespace vdkit::fixups
