// Journals of the guest's file systems: read, replay where allowed, and report (see journals.h).
#include "fixups/journals.h"

#include "blockcore/layers/partition.h"
#include "guestfs/probe.h"

namespace vdkit::fixups {

std::string FsJournal::where() const {
  FsInfo f;
  f.disk = disk;
  f.partition = partition;
  f.lv = lv;
  return type + " on " + place_of(f);
}

Result<std::vector<FsJournal>> recover_journals(const std::vector<std::shared_ptr<BlockDevice>>& disks, bool replay) {
  VDKIT_ASSIGN_OR_RETURN(std::vector<FsInfo> fss, probe_guest_filesystems(disks, nullptr));
  std::vector<FsJournal> out;
  for (const FsInfo& f : fss) {
    if (!guestfs::is_ext(f.type)) continue;
    std::shared_ptr<BlockDevice> view;
    if (!f.lv.empty())
      view = f.volume;  // null when the LV cannot be opened (a missing PV): probed as nothing, so not reached
    else if (f.partition)
      view = make_partition_view(disks[static_cast<size_t>(f.disk)], f.offset, f.length);
    else
      view = disks[static_cast<size_t>(f.disk)];
    if (!view) continue;
    FsJournal j;
    j.disk = f.disk;
    j.partition = f.partition;
    j.lv = f.lv;
    j.type = f.type;
    // A file system whose superblock or journal cannot be read is left to the open that follows, which names it.
    auto state = ext2::read_journal_state(view);
    if (!state.ok()) continue;
    j.report = *state;
    if (replay && j.report.needs_recovery) {
      auto r = ext2::replay_journal(view);
      if (r.ok())
        j.report = *r;
      else
        j.problem = r.status().message();
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::string journal_write_refusal(const std::vector<FsJournal>& journals, bool force) {
  for (const auto& j : journals) {
    if (!j.problem.empty())
      return "the journal of " + j.where() + " needs recovery, which vdkit cannot do: " + j.problem;
    if (j.report.needs_recovery && !j.report.replayed)
      return "the journal of " + j.where() + " needs recovery (the guest was not shut down cleanly)";
    if (!j.report.not_replayed.empty() && !force)
      return "the journal of " + j.where() + " was only partly replayed (" + j.report.summary() +
             "): the guest's newest changes are missing; pass --force to write anyway";
  }
  return "";
}

nlohmann::json to_json(const std::vector<FsJournal>& journals) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& j : journals) {
    const auto& r = j.report;
    nlohmann::json x = {{"disk", j.disk}, {"partition", j.partition}, {"type", j.type}, {"state", r.state()}};
    if (!j.lv.empty()) x["lv"] = j.lv;
    if (!j.problem.empty()) x["problem"] = j.problem;
    if (r.has_journal && !r.external) {
      x["version"] = r.version;
      x["checksum"] = r.checksum;
      x["fast-commit"] = r.fast_commit;
    }
    if (r.replayed) {
      x["replayed"] = {{"transactions", r.transactions},
                       {"blocks", r.blocks},
                       {"revoked", r.revoked},
                       {"orphans-freed", r.orphans_deleted},
                       {"orphans-truncated", r.orphans_truncated}};
      if (!r.not_replayed.empty()) x["not-replayed"] = r.not_replayed;
      if (r.recorded_error) x["recorded-error"] = r.recorded_error;
    }
    a.push_back(x);
  }
  return a;
}

std::string to_human(const std::vector<FsJournal>& journals) {
  std::string s;
  for (const auto& j : journals) {
    if (!j.problem.empty())
      s += j.where() + ": " + j.report.summary() + ", NOT recovered (" + j.problem +
           "): shown as it is on disk, the guest's kernel will replay it\n";
    else if (j.report.needs_recovery)
      s += j.where() + ": " + j.report.summary() + "\n";
  }
  return s;
}

}  // namespace vdkit::fixups
