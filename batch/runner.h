// Running a plan: guests in parallel (biggest first), each guest's disks converted (with fixups when asked),
// progress reported, state saved after every change, stopped cleanly on a signal.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "batch/events.h"
#include "batch/plan.h"
#include "batch/state.h"
#include "blockcore/convert/convert.h"

namespace vdkit::batch {

struct BatchOptions {
  unsigned jobs = 1;
  unsigned cores = 0;  // 0: the machine's
  bool overwrite = false;   // replace targets that exist before this plan ever wrote them
  bool sync = true;
  OpenOptions open;         // allow_external_paths for the sources
  TargetIo target_io;
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT/SIGTERM: launch nothing new, cancel what runs
  // Where the resume records of block-device and NBD targets go (the state file's folder); empty: none kept.
  std::string resume_dir;
};

struct GuestOutcome {
  std::string name;
  size_t disks = 0;
  uint64_t virtual_size = 0, bytes_read = 0, bytes_written = 0;
  double seconds = 0;
  std::vector<std::string> warnings;
  std::string result;  // done, failed, interrupted, skipped (already done in the state file), not-run
  std::string error;
};

struct BatchReport {
  std::vector<GuestOutcome> guests;  // in plan order
  bool interrupted = false;
  size_t failed() const;
};

// The worker threads each conversion gets so that, with `jobs` at a time, they never exceed `cores` together.
unsigned threads_per_job(unsigned cores, unsigned jobs);

// Runs the guests of `rows` (indexes into plan.guests; all when empty). Guests the state records as done are
// skipped; the others are (re)done, their leftover temporary files removed first.
BatchReport run_batch(const Plan& plan, const std::vector<size_t>& rows, StateFile& state, const BatchOptions& opts,
                      EventLog& log);

// The summary as a table for people, and as JSON.
std::string summary_table(const BatchReport& r);
nlohmann::json summary_json(const BatchReport& r);

// Opens a disk of the plan: an image file or an NBD URI.
Result<std::shared_ptr<BlockDevice>> open_plan_disk(const std::string& source, const OpenOptions& open);

}  // namespace vdkit::batch
