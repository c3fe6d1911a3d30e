// The dry run of a plan: everything a run would check before writing, and nothing written.
#include "batch/dry_run.h"

#include <sys/statvfs.h>

#include <map>

#include "batch/runner.h"
#include "blockcore/base/units.h"
#include "fixups/run.h"

namespace vdkit::batch {

namespace {

// The bytes of data a target will hold: the source's data extents (holes and zeros are not written).
Result<uint64_t> estimate(BlockDevice& dev) {
  std::vector<Extent> ex;
  VDKIT_RETURN_IF_ERROR(dev.extents(0, dev.size(), ex));
  uint64_t n = 0;
  for (const auto& e : ex)
    if (e.type == ExtentType::kData) n += e.length;
  return n;
}

// Free bytes where `dir` is or will be created (its nearest existing ancestor).
Result<uint64_t> free_bytes(std::string dir) {
  for (;;) {
    struct statvfs sv;
    if (::statvfs(dir.c_str(), &sv) == 0) return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    if (errno != ENOENT || dir == "/" || dir == ".") return Status::FromErrno(errno, "checking free space in " + dir);
    size_t s = dir.find_last_of('/');
    dir = s == std::string::npos ? "." : (s == 0 ? "/" : dir.substr(0, s));
  }
}

}  // namespace

DryRunReport dry_run(const Plan& plan, const std::vector<size_t>& rows, const OpenOptions& open) {
  DryRunReport r;
  std::vector<size_t> chosen = rows;
  if (chosen.empty())
    for (size_t i = 0; i < plan.guests.size(); ++i) chosen.push_back(i);
  std::map<std::string, uint64_t> need;  // output folder -> estimated bytes
  r.json["guests"] = nlohmann::json::array();
  for (size_t i : chosen) {
    const PlanGuest& g = plan.guests[i];
    nlohmann::json jg = {{"name", g.name}, {"row", g.row}, {"format", g.format}, {"fixup", g.fixup}};
    std::vector<std::string> problems;
    r.text += g.name + ":\n";
    jg["disks"] = nlohmann::json::array();
    bool fixed = false;
    for (size_t d = 0; d < g.disks.size(); ++d) {
      nlohmann::json jd = {{"source", g.disks[d].source}, {"target", g.disks[d].target}};
      auto dev = open_plan_disk(g.disks[d].source, open);
      if (!dev.ok()) {
        problems.push_back("disk " + std::to_string(d) + ": " + dev.status().message());
        r.text += "  disk " + std::to_string(d) + " " + g.disks[d].source + ": " + dev.status().message() + "\n";
        jg["disks"].push_back(jd);
        continue;
      }
      auto est = estimate(**dev);
      jd["virtual-size"] = (*dev)->size();
      if (est.ok()) {
        jd["estimated-bytes"] = *est;
        need[g.output] += *est;
      }
      r.text += "  disk " + std::to_string(d) + " " + g.disks[d].source + " -> " + g.disks[d].target + " (" +
                human_size((*dev)->size()) + " virtual, about " + (est.ok() ? human_size(*est) : std::string("?")) +
                " to write)\n";
      if (g.fixup && !fixed) {
        auto fr = fixups::fixup_device(*dev, g.fixup_options, false);
        if (fr.ok()) {
          fixed = true;
          jd["root"] = true;
          jg["os"] = fr->inspection.os.product_name;
          nlohmann::json changes = nlohmann::json::array(), warnings = nlohmann::json::array();
          r.text += "    guest: " + fr->inspection.os.product_name + "\n";
          for (const auto& c : fr->plan.changes) {
            std::string why;
            for (const auto& w : c.reasons) why += (why.empty() ? "" : ", ") + w;
            changes.push_back({{"path", c.path}, {"reasons", c.reasons}});
            r.text += "    would change " + c.path + " (" + why + ")\n";
          }
          for (const auto& w : fr->plan.warnings) {
            warnings.push_back({{"code", w.code}, {"message", w.message}});
            r.text += "    warning: " + w.message + "\n";
          }
          jg["fixups"] = changes;
          jg["warnings"] = warnings;
        }
      }
      jg["disks"].push_back(jd);
    }
    if (g.fixup && !fixed) problems.push_back("no disk holds a guest root file system vdkit reads (fixup=yes)");
    for (const auto& p : problems) r.text += "  problem: " + p + "\n";
    jg["problems"] = problems;
    r.problems += problems.size();
    r.json["guests"].push_back(jg);
  }
  r.json["folders"] = nlohmann::json::array();
  for (const auto& [dir, bytes] : need) {
    auto free = free_bytes(dir);
    nlohmann::json jf = {{"folder", dir}, {"estimated-bytes", bytes}};
    if (free.ok()) jf["free-bytes"] = *free;
    bool short_of_space = !free.ok() || *free < bytes;
    jf["enough-space"] = !short_of_space;
    r.text += "folder " + dir + ": needs about " + human_size(bytes) + ", " +
              (free.ok() ? human_size(*free) + " free" : free.status().message()) +
              (short_of_space ? "  NOT ENOUGH\n" : "\n");
    if (short_of_space) ++r.problems;
    r.json["folders"].push_back(jf);
  }
  r.json["problems"] = r.problems;
  return r;
}

}  // namespace vdkit::batch
