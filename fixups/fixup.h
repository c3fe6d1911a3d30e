// The Xen/VMware-to-KVM fixups: a plan of file changes (with unified diffs) and warnings, then applying it to a
// GuestFs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixups/disk.h"
#include "fixups/guest_fs.h"
#include "fixups/inspect.h"
#include "fixups/journals.h"
#include "fixups/options.h"

namespace vdkit::fixups {

struct FileChange {
  std::string path;
  std::string before;  // empty for a new file
  std::string after;
  bool created = false;
  std::vector<std::string> reasons;  // why, in order ("device names", "console", ...)
  std::string diff;                  // unified diff, filled by plan_fixups; a summary for a binary file
  bool binary = false;               // an initramfs image: before/after are bytes, never diffed line by line
};

struct FixupWarning {
  std::string code;     // stable id for scripts: "virtio-missing-from-initrd", "no-cloud-init", ...
  std::string message;  // for people
  std::string command;  // the command to run in the guest to fix it ("" when none)
};

struct FixupPlan {
  std::vector<FileChange> changes;
  std::vector<FixupWarning> warnings;
  // The guest's boot disk (letter index) the device names were mapped for; negative when unknown.
  int boot_disk = 0;
  // The guest's journals as found and replayed before planning (filled by fixups/run.cc, not plan_fixups).
  std::vector<FsJournal> journals;
};

// Suffix of backups written with FixupOptions::backup.
inline constexpr const char* kBackupSuffix = ".vdkit-orig";

// Computes every change and warning; touches nothing. Running it again on the
// guest after apply_fixups gives no changes.
FixupPlan plan_fixups(GuestFs& fs, const Inspection& in, const FixupOptions& options);

// Writes the plan's files (and backups when asked). Stops at the first error.
Status apply_fixups(GuestFs& fs, const FixupPlan& plan, const FixupOptions& options);

nlohmann::json to_json(const FixupPlan& plan);
// Every diff, then the warnings, for people.
std::string to_human(const FixupPlan& plan);

}  // namespace vdkit::fixups
