// The batch state file: what happened to each guest of a plan, saved atomically after every change so a run
// killed at any point can be resumed.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockcore/base/status.h"

namespace vdkit::batch {

enum class GuestStatus { kPending, kRunning, kDone, kFailed, kInterrupted };
const char* to_string(GuestStatus s);

struct GuestRecord {
  GuestStatus status = GuestStatus::kPending;
  bool attempted = false;  // a run started writing its targets (so leftovers of that run may be replaced)
  std::string error;
  std::vector<std::string> targets;
  // Targets some attempt of this plan renamed into place: the only files a failed guest's cleanup may remove.
  std::vector<std::string> written;
  std::vector<std::string> warnings;
  uint64_t bytes_read = 0, bytes_written = 0, virtual_size = 0;
  double seconds = 0;
  size_t disks = 0;
};

// One state file. Every method is safe to call from several threads; each change is written to disk before it
// returns (a temporary file in the same folder, fsync, rename, fsync of the folder).
class StateFile {
 public:
  // Loads `path` if it exists (checking it belongs to the same plan: plan_hash), or starts empty. Temporary
  // copies a killed run left beside it are removed.
  static Result<StateFile> open(const std::string& path, const std::string& plan_hash, bool& existed);
  StateFile(StateFile&& o) noexcept : path_(std::move(o.path_)), plan_hash_(std::move(o.plan_hash_)), guests_(std::move(o.guests_)) {}

  GuestRecord get(const std::string& name) const;
  Status put(const std::string& name, const GuestRecord& r);
  std::map<std::string, GuestRecord> all() const;
  const std::string& path() const { return path_; }

 private:
  StateFile(std::string path, std::string plan_hash) : path_(std::move(path)), plan_hash_(std::move(plan_hash)) {}
  Status save_locked() const;
  static void load_guests(const nlohmann::json& guests, std::map<std::string, GuestRecord>& out);
  std::string path_, plan_hash_;
  mutable std::mutex mu_;
  std::map<std::string, GuestRecord> guests_;
};

// A short stable fingerprint of the plan's bytes (FNV-1a 64, hex), so a state file is not applied to another plan.
std::string plan_fingerprint(const std::string& bytes);

// Writes data to path atomically (temporary file beside it, fsync, rename, fsync of the folder).
Status write_file_atomically(const std::string& path, const std::string& data);

}  // namespace vdkit::batch
