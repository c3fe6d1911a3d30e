// Recovery of an ext3/ext4 jbd2 journal into a BlockDevice, as the kernel does when it mounts the file system:
// replay the complete transactions (journal_format.h plans them), mark the journal empty, clear the file system's
// needs-recovery flag, and process the orphan list (inodes deleted or truncated while open). The device is what
// the caller chose to write: a copy-on-write overlay, or the image itself only for `fixup --in-place
// --replay-journal`. The source behind an overlay is never written.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"

namespace vdkit::ext2 {

struct JournalReport {
  bool has_journal = false;
  bool external = false;  // the journal lives on another device (not read)
  int version = 0;        // journal superblock version 1 or 2; 0 when not read
  std::string checksum;   // "none", "v1", "v2", "v3"
  bool fast_commit = false;
  bool needs_recovery = false;     // what the file system said before anything was done
  bool replayed = false;           // recovery ran on the device
  uint32_t transactions = 0;       // complete transactions replayed
  uint64_t blocks = 0;             // file-system blocks written from the log
  uint64_t revoked = 0;            // logged blocks skipped because a later transaction revoked them
  uint32_t orphans_deleted = 0;    // orphan inodes with no links left: freed
  uint32_t orphans_truncated = 0;  // orphan inodes still linked: cut to their size
  // Non-empty when part of the log was not replayed, and why (a checksum that did not match, ...). What was
  // replayed is a whole number of transactions; the rest is left out, never half-applied.
  std::string not_replayed;
  int32_t recorded_error = 0;  // s_errno the journal carried; the file system is then marked as having errors

  // "none", "external", "clean", "needs-recovery", "replayed", "replayed-partly".
  std::string state() const;
  // One line for people: "journal v2 (checksum v3): replayed 3 transactions, 41 blocks, 1 orphan ...".
  std::string summary() const;
};

// What the file system and its journal superblock say; writes nothing. Errors for a superblock that cannot be read.
Result<JournalReport> read_journal_state(std::shared_ptr<BlockDevice> dev);

// Recovers the journal of the ext3/ext4 file system on dev (writable) when it needs recovery; otherwise returns
// read_journal_state's report. Refuses, leaving dev untouched, what it cannot recover faithfully: an external
// journal, fast commits, an orphan file. A failure after the first write leaves dev partly recovered, so callers
// pass a device they can drop (an overlay) or say so.
Result<JournalReport> replay_journal(std::shared_ptr<BlockDevice> dev);

}  // namespace vdkit::ext2
