// The batch state file in JSON, rewritten atomically on every change.
#include "batch/state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vdkit::batch {

const char* to_string(GuestStatus s) {
  switch (s) {
    case GuestStatus::kPending: return "pending";
    case GuestStatus::kRunning: return "running";
    case GuestStatus::kDone: return "done";
    case GuestStatus::kFailed: return "failed";
    case GuestStatus::kInterrupted: return "interrupted";
  }
  return "pending";
}

namespace {

GuestStatus parse_status(const std::string& s) {
  for (GuestStatus g : {GuestStatus::kPending, GuestStatus::kRunning, GuestStatus::kDone, GuestStatus::kFailed,
                        GuestStatus::kInterrupted})
    if (s == to_string(g)) return g;
  return GuestStatus::kPending;
}

Status write_all(int fd, const std::string& data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "writing " + what);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string plan_fingerprint(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The temporary name write_file_atomically uses: PATH.tmp.PID.
static std::string temp_prefix(const std::string& path) { return path + ".tmp."; }

Status write_file_atomically(const std::string& path, const std::string& data) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  std::string tmp = temp_prefix(path) + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  Status st = write_all(fd, data, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "flushing " + tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = Status::FromErrno(errno, "renaming " + tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<StateFile> StateFile::open(const std::string& path, const std::string& plan_hash, bool& existed) {
  StateFile sf(path, plan_hash);
  {
    std::error_code ec;
    std::filesystem::path p(path);
    std::filesystem::path dir = p.parent_path().empty() ? "." : p.parent_path();
    std::string prefix = temp_prefix(p.filename().string());
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(e.path(), ec);
  }
  std::ifstream in(path);
  existed = static_cast<bool>(in);
  if (!existed) return sf;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("guests") || !j["guests"].is_object())
    return Status::Corrupt("the state file " + path + " is not a vdkit batch state (remove it to start over)");
  const bool same_plan = j.contains("plan-fingerprint") && j["plan-fingerprint"].is_string() &&
                         j["plan-fingerprint"].get<std::string>() == plan_hash;
  if (!same_plan)
    return Status::Invalid("the state file " + path +
                           " belongs to another version of the plan (the plan changed since; remove the state file "
                           "to start over, or give --state for a new one)");
  try {
    load_guests(j["guests"], sf.guests_);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corrupt("the state file " + path + " has a field of the wrong type (" + e.what() +
                           "); remove it to start over");
  }
  return sf;
}

void StateFile::load_guests(const nlohmann::json& guests, std::map<std::string, GuestRecord>& out) {
  for (auto& [name, g] : guests.items()) {
    if (!g.is_object()) continue;
    GuestRecord r;
    r.status = parse_status(g.value("status", "pending"));
    r.attempted = g.value("attempted", false);
    r.error = g.value("error", "");
    // Counts only from whole non-negative numbers (a float out of range would be undefined behaviour).
    const nlohmann::json& rec = g;
    auto count = [&rec](const char* k) -> uint64_t {
      return rec.contains(k) && rec[k].is_number_unsigned() ? rec[k].get<uint64_t>() : 0;
    };
    r.bytes_read = count("bytes-read");
    r.bytes_written = count("bytes-written");
    r.virtual_size = count("virtual-size");
    r.seconds = g.contains("seconds") && g["seconds"].is_number() ? g["seconds"].get<double>() : 0.0;
    r.disks = count("disks");
    if (g.contains("targets") && g["targets"].is_array())
      for (auto& t : g["targets"])
        if (t.is_string()) r.targets.push_back(t.get<std::string>());
    if (g.contains("warnings") && g["warnings"].is_array())
      for (auto& w : g["warnings"])
        if (w.is_string()) r.warnings.push_back(w.get<std::string>());
    if (g.contains("written") && g["written"].is_array())
      for (auto& w : g["written"])
        if (w.is_string()) r.written.push_back(w.get<std::string>());
    out[name] = std::move(r);
  }
}

GuestRecord StateFile::get(const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = guests_.find(name);
  return it == guests_.end() ? GuestRecord{} : it->second;
}

std::map<std::string, GuestRecord> StateFile::all() const {
  std::lock_guard<std::mutex> l(mu_);
  return guests_;
}

Status StateFile::put(const std::string& name, const GuestRecord& r) {
  std::lock_guard<std::mutex> l(mu_);
  guests_[name] = r;
  return save_locked();
}

Status StateFile::save_locked() const {
  nlohmann::json j;
  j["plan-fingerprint"] = plan_hash_;
  j["guests"] = nlohmann::json::object();
  for (const auto& [name, r] : guests_) {
    nlohmann::json g;
    g["status"] = to_string(r.status);
    g["attempted"] = r.attempted;
    if (!r.error.empty()) g["error"] = r.error;
    g["targets"] = r.targets;
    g["written"] = r.written;
    g["warnings"] = r.warnings;
    g["disks"] = r.disks;
    g["virtual-size"] = r.virtual_size;
    g["bytes-read"] = r.bytes_read;
    g["bytes-written"] = r.bytes_written;
    g["seconds"] = r.seconds;
    j["guests"][name] = g;
  }
  return write_file_atomically(path_, j.dump(2) + "\n");
}

}  // namespace vdkit::batch
