// The dry run of a plan: everything a run would check before writing, and nothing written.
#include "batch/dry_run.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "batch/runner.h"
#include "blockcore/base/units.h"
#include "fixups/run.h"
#include "guestfs/sparse_map.h"

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

struct FreeSpace {
  uint64_t fsid = 0;
  uint64_t bytes = 0;
};

// The file system where `dir` is or will be created (its nearest existing ancestor): its id and free bytes.
Result<FreeSpace> free_space(std::string dir) {
  for (;;) {
    struct statvfs sv;
    if (::statvfs(dir.c_str(), &sv) == 0) return FreeSpace{sv.f_fsid, static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize};
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
    // Every disk opened first: the map of unused blocks is built across them, as the run builds it (a VG over two
    // disks), so a disk it cannot read fails here, not halfway through a run.
    std::vector<Result<std::shared_ptr<BlockDevice>>> devs;
    std::vector<std::shared_ptr<BlockDevice>> opened;
    for (const auto& pd : g.disks) {
      devs.push_back(open_plan_disk(pd.source, open));
      if (devs.back().ok()) opened.push_back(*devs.back());
    }
    std::vector<std::shared_ptr<BlockDevice>> masked;
    if (g.sparsify && opened.size() == g.disks.size()) {
      std::vector<GuestDisk> guest;
      for (size_t d = 0; d < opened.size(); ++d) guest.push_back({g.disks[d].source, opened[d]});
      std::vector<guestfs::SparseMap> maps;
      auto m = guestfs::make_sparsified_devices(guest, &maps);
      if (m.ok())
        masked = std::move(*m);
      else
        problems.push_back("sparsify: " + m.status().message());
    }
    for (size_t d = 0; d < g.disks.size(); ++d) {
      nlohmann::json jd = {{"source", g.disks[d].source}, {"target", g.disks[d].target}};
      auto& dev = devs[d];
      if (!dev.ok()) {
        problems.push_back("disk " + std::to_string(d) + ": " + dev.status().message());
        r.text += "  disk " + std::to_string(d) + " " + g.disks[d].source + ": " + dev.status().message() + "\n";
        jg["disks"].push_back(jd);
        continue;
      }
      auto est = estimate(**dev);
      jd["virtual-size"] = (*dev)->size();
      if (!g.disks[d].in_place && ::access(g.disks[d].target.c_str(), F_OK) == 0) {
        // A run replaces it only with --overwrite (or when this plan wrote it, which the state file knows).
        jd["target-exists"] = true;
        r.text += "  note: " + g.disks[d].target + " exists (a run needs --overwrite or --resume to replace it)\n";
      }
      if (!masked.empty() && est.ok()) {
        auto left = estimate(*masked[d]);
        if (left.ok()) {
          jd["sparsify-bytes-left-out"] = *est - std::min(*est, *left);
          est = *left;
        }
      }
      if (est.ok()) jd["estimated-bytes"] = *est;
      // Space is checked where files go; a device or export is checked by size when the run opens it.
      if (est.ok() && !g.disks[d].in_place) {
        std::string dir = std::filesystem::path(g.disks[d].target).parent_path().string();
        need[dir.empty() ? "." : dir] += *est;
      }
      r.text += "  disk " + std::to_string(d) + " " + g.disks[d].source + " -> " + g.disks[d].target + " (" +
                human_size((*dev)->size()) + " virtual, about " + (est.ok() ? human_size(*est) : std::string("?")) +
                " to write)\n";
      jg["disks"].push_back(jd);
    }
    // The fixups are planned over all the guest's disks at once, as a run applies them.
    if (g.fixup && opened.size() == g.disks.size()) {
      auto fr = fixups::fixup_devices(opened, g.fixup_options, false);
      if (fr.ok()) {
        jg["os"] = fr->inspection.os.product_name;
        nlohmann::json changes = nlohmann::json::array(), warnings = nlohmann::json::array();
        r.text += "  guest: " + fr->inspection.os.product_name + "\n";
        for (const auto& c : fr->plan.changes) {
          std::string why;
          for (const auto& w : c.reasons) why += (why.empty() ? "" : ", ") + w;
          changes.push_back({{"path", c.path}, {"reasons", c.reasons}});
          r.text += "  would change " + c.path + " (" + why + ")\n";
        }
        for (const auto& w : fr->plan.warnings) {
          warnings.push_back({{"code", w.code}, {"message", w.message}});
          r.text += "  warning: " + w.message + "\n";
        }
        jg["fixups"] = changes;
        jg["warnings"] = warnings;
      } else {
        problems.push_back("fixups: " + fr.status().message());
      }
    }
    for (const auto& p : problems) r.text += "  problem: " + p + "\n";
    jg["problems"] = problems;
    r.problems += problems.size();
    r.json["guests"].push_back(jg);
  }
  // Folders on one file system share its free space: the check is per file system.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> per_fs;  // fsid -> (needed, free)
  std::map<std::string, Result<FreeSpace>> where;
  for (const auto& [dir, bytes] : need) {
    auto f = free_space(dir);
    if (f.ok()) {
      per_fs[f->fsid].first += bytes;
      per_fs[f->fsid].second = f->bytes;
    }
    where.emplace(dir, f);
  }
  r.json["folders"] = nlohmann::json::array();
  for (const auto& [dir, bytes] : need) {
    const auto& f = where.at(dir);
    nlohmann::json jf = {{"folder", dir}, {"estimated-bytes", bytes}};
    bool short_of_space = !f.ok();
    if (f.ok()) {
      auto [needed, free] = per_fs[f->fsid];
      jf["free-bytes"] = free;
      jf["file-system-estimated-bytes"] = needed;
      short_of_space = free < needed;
    }
    jf["enough-space"] = !short_of_space;
    r.text += "folder " + dir + ": needs about " + human_size(bytes) + ", " +
              (f.ok() ? human_size(f->bytes) + " free on its file system" : f.status().message()) +
              (short_of_space ? "  NOT ENOUGH (with the other folders on that file system)\n" : "\n");
    if (short_of_space) ++r.problems;
    r.json["folders"].push_back(jf);
  }
  r.json["problems"] = r.problems;
  return r;
}

}  // namespace vdkit::batch
