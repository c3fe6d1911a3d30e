// The guest's ext3/ext4 journals before inspection or fixups: each is read, and replayed where the caller's device
// is a copy-on-write layer (or --in-place --replay-journal allowed writing the image), so the fixups see the file
// systems as the guest's kernel would after mounting them. The policy of "Logs and journals" in
// docs/ARCHITECTURE.md lives here; the replay itself is guestfs/ext2/journal_replay.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "fixups/disk.h"
#include "guestfs/ext2/journal_replay.h"

namespace vdkit::fixups {

struct FsJournal {
  int disk = 0;       // which of the guest's disks (for an LV, the disk of its first PV)
  int partition = 0;  // 0: the whole disk (or an LV)
  std::string lv;     // "VG/LV" for a file system on a logical volume
  std::string type;   // "ext4", ...
  ext2::JournalReport report;
  // Why a journal that needs recovery was not recovered (fast commits, an external journal, a corrupt orphan
  // list...): inspection goes on and shows the file system as it is; writes are refused.
  std::string problem;
  std::string where() const;  // "ext4 on partition 1", "ext4 on LV ubuntu-vg/ubuntu-lv"
};

// Reads the journal of every ext3/ext4 file system of the guest on `disks` (partitions, whole disks, and LVs of
// the VGs on them); replays the ones that need recovery when `replay` (the disks must then be writable: an LV's
// replay writes through its segments into the disks). A file system whose superblock cannot be read is left out
// (opening it later names the problem); one whose recovery fails keeps its report with `problem` set. Errors only
// when the disks' partitions or VG metadata cannot be read.
Result<std::vector<FsJournal>> recover_journals(const std::vector<std::shared_ptr<BlockDevice>>& disks, bool replay);

// Why writing into these file systems would be wrong, or "" when it is fine: a journal left needing recovery, or
// one only partly replayed (its newest transactions failed their checks). `force` lets the partly replayed through.
std::string journal_write_refusal(const std::vector<FsJournal>& journals, bool force);

nlohmann::json to_json(const std::vector<FsJournal>& journals);
// One line per file system with a journal that needed recovery ("" when none did).
std::string to_human(const std::vector<FsJournal>& journals);

}  // namespace vdkit::fixups
