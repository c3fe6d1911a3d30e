// FaultInjectingEngine: applies the first matching rule to each transfer and passes the rest to the real engine.
#include "blockcore/testing/fault_io.h"

#include <unistd.h>

#include <cstring>
#include <sstream>

#include "blockcore/base/checked.h"

namespace vdkit {

void FaultInjectingEngine::add_rule(const Rule& r) {
  std::lock_guard<std::mutex> lk(mu_);
  rules_.push_back(r);
}

void FaultInjectingEngine::clear() {
  std::lock_guard<std::mutex> lk(mu_);
  rules_.clear();
}

uint64_t FaultInjectingEngine::fired() const {
  std::lock_guard<std::mutex> lk(mu_);
  return fired_;
}

bool FaultInjectingEngine::take_rule(const IoRequest& r, Rule& out) {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& rule : rules_) {
    if (rule.times == 0) continue;
    if (rule.fd >= 0 && rule.fd != r.fd) continue;
    if (!rule.path_contains.empty()) {
      char link[4096];
      std::string proc = "/proc/self/fd/" + std::to_string(r.fd);
      ssize_t n = ::readlink(proc.c_str(), link, sizeof link - 1);
      if (n <= 0 || std::string(link, static_cast<size_t>(n)).find(rule.path_contains) == std::string::npos) continue;
    }
    bool is_write_rule = rule.kind == Kind::kWriteError || rule.kind == Kind::kTornWrite;
    if (is_write_rule != r.write) continue;
    uint64_t rule_end = checked_add(rule.offset, rule.length).value_or(std::numeric_limits<uint64_t>::max());
    uint64_t req_end = r.offset + r.len;
    if (r.len == 0 || req_end <= rule.offset || r.offset >= rule_end) continue;
    if (rule.skip > 0) {
      --rule.skip;
      continue;
    }
    if (rule.times > 0) --rule.times;
    ++fired_;
    out = rule;
    return true;
  }
  return false;
}

Result<std::vector<FaultInjectingEngine::Rule>> FaultInjectingEngine::ParseRules(const std::string& spec) {
  std::vector<Rule> rules;
  std::stringstream all(spec);
  std::string one;
  while (std::getline(all, one, ';')) {
    if (one.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(one);
    std::string part;
    while (std::getline(ss, part, ':')) f.push_back(part);
    if (f.size() < 4 || f.size() > 8)
      return Status::Invalid("fault rule '" + one + "': want KIND:PATH:OFFSET:LENGTH[:ERRNO[:TIMES[:KEEP[:SKIP]]]]");
    Rule r;
    if (f[0] == "read-error") r.kind = Kind::kReadError;
    else if (f[0] == "short-read") r.kind = Kind::kShortRead;
    else if (f[0] == "write-error") r.kind = Kind::kWriteError;
    else if (f[0] == "torn-write") r.kind = Kind::kTornWrite;
    else return Status::Invalid("fault rule '" + one + "': unknown kind '" + f[0] + "'");
    r.path_contains = f[1];
    try {
      r.offset = std::stoull(f[2], nullptr, 0);
      r.length = std::stoull(f[3], nullptr, 0);
      if (f.size() > 4) {
        const std::string& e = f[4];
        r.error = e == "EIO" ? EIO : e == "ENOSPC" ? ENOSPC : e == "EROFS" ? EROFS : e == "ENOMEM" ? ENOMEM
                                                                                           : std::stoi(e);
      }
      if (f.size() > 5) r.times = std::stoi(f[5]);
      if (f.size() > 6 && !f[6].empty()) r.keep = std::stoull(f[6], nullptr, 0);
      if (f.size() > 7) r.skip = std::stoull(f[7], nullptr, 0);
    } catch (const std::exception&) {
      return Status::Invalid("fault rule '" + one + "': a number is not a number");
    }
    if (r.error <= 0) return Status::Invalid("fault rule '" + one + "': errno must be positive");
    rules.push_back(r);
  }
  return rules;
}

Status FaultInjectingEngine::submit(std::span<IoRequest> reqs) {
  Status first;
  std::vector<IoRequest*> pass;
  std::vector<IoRequest> batch;
  std::vector<size_t> index;
  for (size_t i = 0; i < reqs.size(); ++i) {
    IoRequest& r = reqs[i];
    Rule rule;
    if (!take_rule(r, rule)) {
      batch.push_back(r);
      index.push_back(i);
      continue;
    }
    std::string what = std::string("injected fault: ") + (r.write ? "write" : "read") + " of " +
                       std::to_string(r.len) + " bytes at offset " + std::to_string(r.offset);
    switch (rule.kind) {
      case Kind::kReadError:
      case Kind::kWriteError:
        r.result = -rule.error;
        if (first.ok()) first = Status::FromErrno(rule.error, what);
        break;
      case Kind::kShortRead:
      case Kind::kTornWrite: {
        IoRequest part = r;
        part.len = std::min(rule.keep, r.len);
        Status st = inner_.submit(std::span<IoRequest>(&part, 1));
        if (rule.kind == Kind::kShortRead) {
          r.result = st.ok() ? part.result : part.result;
          if (!st.ok() && first.ok()) first = st;
        } else {
          r.result = -rule.error;
          if (first.ok()) first = Status::FromErrno(rule.error, what + " (torn after " + std::to_string(part.len) +
                                                                    " bytes)");
        }
        break;
      }
    }
  }
  if (!batch.empty()) {
    Status st = inner_.submit(batch);
    for (size_t k = 0; k < batch.size(); ++k) reqs[index[k]].result = batch[k].result;
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace vdkit
