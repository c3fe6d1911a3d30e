// Fuzzes the batch plan reader (CSV and JSON): any input parses or is refused with a message; a parsed plan keeps
// its invariants (unique names, unique targets, every disk with a target in its row's output folder).
#include <set>
#include <string>

#include "batch/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto plan = vdkit::batch::parse_plan(text, "fuzz.csv", "/base");
  if (!plan.ok()) {
    if (plan.status().message().empty()) __builtin_trap();
    return 0;
  }
  std::set<std::string> names, targets;
  for (const auto& g : plan->guests) {
    if (!names.insert(g.name).second || g.disks.empty()) __builtin_trap();
    for (const auto& d : g.disks)
      if (!targets.insert(d.target).second || d.target.rfind(g.output + "/", 0) != 0) __builtin_trap();
  }
  auto csv = vdkit::batch::parse_csv(text);
  (void)csv;
  return 0;
}
