// The inspect/fixup pass: opens the guest's file systems on a device (or a folder), plans, applies, closes.
#include "fixups/run.h"

#include <algorithm>

#include "blockcore/layers/overlay.h"

namespace vdkit::fixups {
namespace {

// Journals first, so inspection and the plan see what the guest's kernel would after mounting. `dev_is_copy`: dev
// is a copy-on-write layer the caller made, which the replay may write; the image itself (--in-place) only with
// --replay-journal, and only once a trial replay in memory shows it would be whole (or --force).
Result<std::vector<FsJournal>> prepare_journals(const std::vector<std::shared_ptr<BlockDevice>>& disks,
                                                const FixupOptions& options, bool apply, bool dev_is_copy) {
  if (!apply || dev_is_copy) {
    VDKIT_ASSIGN_OR_RETURN(auto journals, recover_journals(disks, true));
    if (apply) {
      std::string why = journal_write_refusal(journals, options.force);
      if (!why.empty()) return Status::Error(EROFS, why);
    }
    return journals;
  }
  std::vector<std::shared_ptr<BlockDevice>> trial_disks;
  for (const auto& d : disks) trial_disks.push_back(make_memory_overlay(d));
  VDKIT_ASSIGN_OR_RETURN(auto trial, recover_journals(trial_disks, options.replay_journal));
  std::string why = journal_write_refusal(trial, options.force);
  if (!why.empty() && !options.replay_journal)
    why += "; --in-place replays it into the image only with --replay-journal (-o OUTPUT replays it into the copy)";
  if (!why.empty()) return Status::Error(EROFS, why);
  if (!options.replay_journal) return trial;
  return recover_journals(disks, true);
}

// The file system a guest path lands on: the one mounted at its longest matching mount point.
const FsInfo* fs_for_path(const std::vector<FsInfo>& filesystems, const std::string& path) {
  const FsInfo* best = nullptr;
  for (const auto& f : filesystems) {
    const std::string& mp = f.mount_point;
    if (mp.empty() || mp == "swap") continue;
    bool under = mp == "/" || path == mp || (path.size() > mp.size() && path.compare(0, mp.size(), mp) == 0 &&
                                              path[mp.size()] == '/');
    if (under && (!best || mp.size() > best->mount_point.size())) best = &f;
  }
  return best;
}

std::string name_of(const FsInfo& f) {
  return f.type + (f.partition ? " on partition " + std::to_string(f.partition) : " on the whole disk") +
         (f.mount_point.empty() ? "" : " (" + f.mount_point + ")");
}

// Before anything is written: every change on a file system vdkit does not write itself needs --kernel, and a log
// such a mount would replay needs a copy-on-write layer or --replay-journal.
Status check_kernel_writes(const FixupPlan& plan, const std::vector<FsInfo>& filesystems, const FixupOptions& options,
                           bool overlay) {
  for (const auto& c : plan.changes) {
    const FsInfo* f = fs_for_path(filesystems, c.path);
    if (!f || !needs_kernel_to_write(f->type)) continue;
    if (!options.kernel)
      return Status::Error(EROFS, c.path + " is on " + name_of(*f) + ", which vdkit reads but does not write itself "
                                  "(writing " + f->type + " from userspace is not safe); nothing was written. Add "
                                  "--kernel (as root) to write it with the host kernel's own driver through a private "
                                  "loop mount of the overlay; the host kernel then parses the guest's file system");
    if (f->needs_replay && !overlay && !options.replay_journal)
      return Status::Error(EROFS, name_of(*f) + " has a log that needs recovery: mounting it to write " + c.path +
                                      " would replay the log into the image itself; nothing was written. Add "
                                      "--replay-journal to allow that with --in-place, or write a copy with -o");
  }
  return Status::Ok();
}

Result<FixupResult> fixup_on(std::vector<std::shared_ptr<BlockDevice>> disks, const FixupOptions& options,
                             bool apply, bool dev_is_copy) {
  if (disks.empty()) return Status::Invalid("no disk given");
  for (size_t i = 0; i < disks.size(); ++i)
    if (apply && !disks[i]->caps().writable)
      return Status::Error(EROFS, disks.size() == 1 ? std::string("the disk is not writable")
                                                    : "disk " + std::to_string(i) + " is not writable");
  // A dry run replays journals into memory only. All disks at once: a journal on an LV spanning two disks writes
  // into both.
  if (!apply)
    for (auto& d : disks) d = make_memory_overlay(std::move(d));
  VDKIT_ASSIGN_OR_RETURN(auto journals, prepare_journals(disks, options, apply, dev_is_copy));
  // Plan on a read-only view first: a guest with nothing to change is never
  // opened for writing, so not even a superblock time changes.
  FixupResult r;
  std::vector<FsInfo> filesystems;
  {
    VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(disks, false));
    r.inspection = inspect_guest(*guest->fs, guest->filesystems);
    r.inspection.volume_notes = guest->notes;
    r.plan = plan_fixups(*guest->fs, r.inspection, options);
    filesystems = guest->filesystems;
    VDKIT_RETURN_IF_ERROR(guest->close());
  }
  // What the reader said about each file system (a dirty log or a log tree awaiting replay: the plan shows the state before replay).
  for (const auto& f : filesystems)
    for (const auto& w : f.warnings)
      r.plan.warnings.push_back({f.needs_replay ? "log-needs-recovery" : "filesystem", w, ""});
  r.inspection.journals = journals;
  r.plan.journals = journals;
  if (!apply || r.plan.changes.empty()) return r;
  VDKIT_RETURN_IF_ERROR(check_kernel_writes(r.plan, filesystems, options, dev_is_copy));
  OpenGuestOptions how;
  how.kernel = options.kernel;
  how.replay_log = dev_is_copy || options.replay_journal;
  how.force = options.force;
  for (const auto& c : r.plan.changes) {
    const FsInfo* f = fs_for_path(filesystems, c.path);
    if (!f || !needs_kernel_to_write(f->type) ||
        std::find(how.kernel_mounts.begin(), how.kernel_mounts.end(), f->mount_point) != how.kernel_mounts.end())
      continue;
    how.kernel_mounts.push_back(f->mount_point);
    if (f->needs_replay)
      r.plan.warnings.push_back({"log-replayed",
                                 "the kernel mount that wrote " + name_of(*f) + " replayed its log into " +
                                     (dev_is_copy ? std::string("the overlay (the source is unchanged)")
                                              : std::string("the image (--replay-journal)")),
                                 ""});
  }
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(disks, true, how));
  Status st = apply_fixups(*guest->fs, r.plan, options);
  Status closed = guest->close();
  if (!st.ok()) return st;
  if (!closed.ok()) return closed.Context("closing the guest file systems");
  return r;
}

}  // namespace

Result<Inspection> inspect_device(std::shared_ptr<BlockDevice> dev) { return inspect_devices({std::move(dev)}); }

Result<Inspection> inspect_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks) {
  // The guest as its kernel would see it after mounting: journals replayed, into memory only.
  std::vector<std::shared_ptr<BlockDevice>> views;
  for (const auto& d : disks) views.push_back(make_memory_overlay(d));
  VDKIT_ASSIGN_OR_RETURN(auto journals, recover_journals(views, true));
  VDKIT_ASSIGN_OR_RETURN(auto guest, open_guest(views, false));
  Inspection in = inspect_guest(*guest->fs, guest->filesystems);
  in.journals = std::move(journals);
  in.volume_notes = guest->notes;
  VDKIT_RETURN_IF_ERROR(guest->close());
  return in;
}

Result<FixupResult> fixup_device(std::shared_ptr<BlockDevice> dev, const FixupOptions& options, bool apply,
                                 bool overlay) {
  return fixup_on({std::move(dev)}, options, apply, overlay);
}

Result<FixupResult> fixup_devices(const std::vector<std::shared_ptr<BlockDevice>>& disks, const FixupOptions& options,
                                  bool apply, bool overlay) {
  return fixup_on(disks, options, apply, overlay);
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
  VDKIT_ASSIGN_OR_RETURN(FixupResult r, fixup_on({overlay}, options, true, true));
  if (result) *result = std::move(r);
  return overlay;
}

Result<std::vector<std::shared_ptr<BlockDevice>>> make_fixed_overlays(
    const std::vector<std::shared_ptr<BlockDevice>>& srcs, const FixupOptions& options, FixupResult* result) {
  std::vector<std::shared_ptr<BlockDevice>> overlays;
  for (const auto& s : srcs) overlays.push_back(make_memory_overlay(s));
  VDKIT_ASSIGN_OR_RETURN(FixupResult r, fixup_on(overlays, options, true, true));
  if (result) *result = std::move(r);
  return overlays;
}

}  // namespace vdkit::fixups
