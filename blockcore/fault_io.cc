// FaultInjectingEngine: applies the first matching rule to each transfer and passes the rest to the real engine.
#include "blockcore/fault_io.h"

#include <cstring>

#include "blockcore/checked.h"

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
    bool is_write_rule = rule.kind == Kind::kWriteError || rule.kind == Kind::kTornWrite;
    if (is_write_rule != r.write) continue;
    uint64_t rule_end = checked_add(rule.offset, rule.length).value_or(std::numeric_limits<uint64_t>::max());
    uint64_t req_end = r.offset + r.len;
    if (r.len == 0 || req_end <= rule.offset || r.offset >= rule_end) continue;
    if (rule.times > 0) --rule.times;
    ++fired_;
    out = rule;
    return true;
  }
  return false;
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
