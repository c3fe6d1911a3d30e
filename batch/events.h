// What a batch run tells the world while it runs: JSON Lines events for scripts and a live view for people.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vdkit::batch {

// One guest's progress as the live view shows it.
struct GuestProgress {
  std::string phase;  // "opening", "fixups", "disk 1/2", ...
  uint64_t done = 0, total = 0;
  std::chrono::steady_clock::time_point started;
};

// Serialises events from the worker threads. Event kinds: start, phase, progress, warning, done, failed,
// interrupted. `progress` events are throttled to one a second per guest.
class EventLog {
 public:
  // events: nullptr for none. live: redraw one line per running guest plus an overall line on `live_to` (a
  // terminal), at most every 200 ms.
  EventLog(FILE* events, FILE* live_to, size_t guests_total);
  ~EventLog();

  void start(const std::string& guest, uint64_t total_bytes);
  void phase(const std::string& guest, const std::string& phase);
  void progress(const std::string& guest, uint64_t done, uint64_t total);
  void warning(const std::string& guest, const std::string& code, const std::string& message);
  void finished(const std::string& guest, const std::string& result, const nlohmann::json& detail);
  // Clears the live view for good (before the summary is printed).
  void close_live();

 private:
  void emit(nlohmann::json j);
  void redraw_locked(bool force);
  std::mutex mu_;
  FILE* events_;
  FILE* live_;
  size_t total_guests_, finished_ = 0, failed_ = 0;
  std::map<std::string, GuestProgress> running_;
  std::map<std::string, std::chrono::steady_clock::time_point> last_progress_;
  std::chrono::steady_clock::time_point last_draw_{};
  size_t drawn_lines_ = 0;
};

// "1.5 GiB", "12:05" for the live view and the summary.
std::string fmt_eta(double seconds);

}  // namespace vdkit::batch
