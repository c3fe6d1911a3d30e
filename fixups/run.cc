// The inspect/fixup pass: opens the guest's file systems on a device (or a folder), plans, applies, closes.
#include "fixups/run.h"

#include "blockcore/layers/overlay.h"

namespace vdkit::fixups {
namespace {

// Journals first, so inspection and the plan see what the guest's kernel would after mounting. `dev_is_copy`: dev
// is a copy-on-write layer the caller made, which the replay may write; the image itself (--in-place) only with
// --replay-journal, and only once a trial replay in memory shows it would be whole (or --force).
Result<std::vector<FsJournal>> prepare_journals(std::shared_ptr<BlockDevice> dev, const FixupOptions& options,
                                                bool apply, bool dev_is_copy) {
  if (!apply || dev_is_copy) {
    VDKIT_ASSIGN_OR_RETURN(auto journals, recover_journals(dev, true));
    if (apply) {
      std::string why = journal_write_refusal(journals, options.force);
      if (!why.empty()) return Status::Error(EROFS, why);
    }
    return journals;
  }
  VDKIT_ASSIGN_OR_RETURN(auto trial, recover_journals(make_memory_overlay(dev), options.replay_journal));
  std::string why = journal_write_refusal(trial, options.force);
  if (!why.empty() && !options.replay_journal)
    why += "; --in-place replays it into the image only with --replay-journal (-o OUTPUT replays it into the copy)";
  if (!why.empty()) return Status::Error(EROFS, why);
  if (!options.replay_journal) return trial;
  return recover_journals(dev, true);
}

Result<FixupResult> fixup_on(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply,
                             bool dev_is_copy) {
  if (apply && !dev->caps().writable) return Status::Error(EROFS, "the disk is not writable");
  // A dry run replays journals into memory only.
  if (!apply) dev = make_memory_overlay(std::move(dev));
  VDKIT_ASSIGN_OR_RETURN(auto journals, prepare_journals(dev, options, apply, dev_is_copy));
  // Plan on a read-only view first: a guest with nothing to change is never
  // opened for writing, so not even a superblock time changes.
  FixupResult r;
  {
    VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(dev, false));
    r.inspection = inspect_guest(*guest->fs, guest->filesystems);
    r.plan = plan_fixups(*guest->fs, r.inspection, options);
    VDKIT_RETURN_IF_ERROR(guest->close());
  }
  r.inspection.journals = journals;
  r.plan.journals = journals;
  if (!apply || r.plan.changes.empty()) return r;
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(dev, true, options.force));
  Status st = apply_fixups(*guest->fs, r.plan, options);
  Status closed = guest->close();
  if (!st.ok()) return st;
  if (!closed.ok()) return closed.Context("closing the guest file systems");
  return r;
}

}  // namespace

Result<Inspection> inspect_device(std::shared_ptr<BlockDevice> dev) {
  // The guest as its kernel would see it after mounting: journals replayed, into memory only.
  std::shared_ptr<BlockDevice> view = make_memory_overlay(std::move(dev));
  VDKIT_ASSIGN_OR_RETURN(auto journals, recover_journals(view, true));
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(view, false));
  Inspection in = inspect_guest(*guest->fs, guest->filesystems);
  in.journals = std::move(journals);
  VDKIT_RETURN_IF_ERROR(guest->close());
  return in;
}

Result<FixupResult> fixup_device(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply) {
  return fixup_on(std::move(dev), options, apply, false);
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
  VDKIT_ASSIGN_OR_RETURN(FixupResult r, fixup_on(overlay, options, true, true));
  if (result) *result = std::move(r);
  return overlay;
}

}  // namespace vdkit::fixups
