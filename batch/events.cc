// JSON Lines events and the live per-guest view of a batch run.
#include "batch/events.h"

#include <ctime>

#include "blockcore/base/units.h"

namespace vdkit::batch {

namespace {

std::string now_iso8601() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03ldZ", buf, ts.tv_nsec / 1000000);
  return out;
}

}  // namespace

std::string fmt_eta(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  auto t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

EventLog::EventLog(FILE* events, FILE* live_to, size_t guests_total)
    : events_(events), live_(live_to), total_guests_(guests_total) {}

EventLog::~EventLog() { close_live(); }

void EventLog::emit(nlohmann::json j) {
  if (!events_) return;
  nlohmann::json line;
  line["time"] = now_iso8601();
  for (auto& [k, v] : j.items()) line[k] = v;
  std::string text = line.dump() + "\n";
  std::fputs(text.c_str(), events_);
  std::fflush(events_);
}

void EventLog::start(const std::string& guest, uint64_t total_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  running_[guest] = {"opening", 0, total_bytes, std::chrono::steady_clock::now()};
  emit({{"event", "start"}, {"guest", guest}, {"bytes", total_bytes}});
  redraw_locked(true);
}

void EventLog::phase(const std::string& guest, const std::string& phase) {
  std::lock_guard<std::mutex> l(mu_);
  running_[guest].phase = phase;
  emit({{"event", "phase"}, {"guest", guest}, {"phase", phase}});
  redraw_locked(true);
}

void EventLog::progress(const std::string& guest, uint64_t done, uint64_t total) {
  std::lock_guard<std::mutex> l(mu_);
  auto& p = running_[guest];
  p.done = done;
  p.total = total;
  auto now = std::chrono::steady_clock::now();
  auto& last = last_progress_[guest];
  if (now - last >= std::chrono::seconds(1) || done == total) {
    last = now;
    emit({{"event", "progress"}, {"guest", guest}, {"phase", p.phase}, {"done", done}, {"total", total}});
  }
  redraw_locked(false);
}

void EventLog::warning(const std::string& guest, const std::string& code, const std::string& message) {
  std::lock_guard<std::mutex> l(mu_);
  emit({{"event", "warning"}, {"guest", guest}, {"code", code}, {"message", message}});
}

void EventLog::finished(const std::string& guest, const std::string& result, const nlohmann::json& detail) {
  std::lock_guard<std::mutex> l(mu_);
  running_.erase(guest);
  ++finished_;
  if (result == "failed") ++failed_;
  nlohmann::json j = {{"event", result}, {"guest", guest}};
  for (auto& [k, v] : detail.items()) j[k] = v;
  emit(j);
  redraw_locked(true);
}

void EventLog::close_live() {
  std::lock_guard<std::mutex> l(mu_);
  if (!live_ || drawn_lines_ == 0) return;
  std::fprintf(live_, "\x1b[%zuF\x1b[J", drawn_lines_);
  std::fflush(live_);
  drawn_lines_ = 0;
  live_ = nullptr;
}

void EventLog::redraw_locked(bool force) {
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  std::string out;
  if (drawn_lines_) out += "\x1b[" + std::to_string(drawn_lines_) + "F\x1b[J";
  size_t lines = 0;
  for (const auto& [name, p] : running_) {
    double el = std::chrono::duration<double>(now - p.started).count();
    double rate = el > 0 ? p.done / el : 0;
    double pct = p.total ? 100.0 * p.done / p.total : 0;
    std::string eta = p.total && rate > 0 ? fmt_eta((p.total - std::min(p.done, p.total)) / rate) : "--:--";
    char line[256];
    std::snprintf(line, sizeof line, "  %-20.20s %-12.12s %5.1f%%  %10s/s  ETA %s\n", name.c_str(), p.phase.c_str(),
                  pct, human_size(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
    out += line;
    ++lines;
  }
  char total[160];
  std::snprintf(total, sizeof total, "%zu of %zu guests finished, %zu failed, %zu running\n", finished_,
                total_guests_, failed_, running_.size());
  out += total;
  ++lines;
  std::fputs(out.c_str(), live_);
  std::fflush(live_);
  drawn_lines_ = lines;
}

}  // namespace vdkit::batch
