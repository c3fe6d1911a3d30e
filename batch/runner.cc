// The batch runner: a queue of guests, biggest first, worked by --jobs threads that share the machine's cores.
#include "batch/runner.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "blockcore/base/units.h"
#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/target_names.h"
#include "blockcore/sources/image.h"
#include "blockcore/sources/nbd_source.h"
#include "fixups/run.h"
#include "guestfs/sparse_map.h"

namespace vdkit::batch {

namespace {

namespace fs = std::filesystem;

bool exists(const std::string& p) {
  std::error_code ec;
  return fs::symlink_status(p, ec).type() != fs::file_type::not_found && !ec;
}

// A run killed with SIGKILL leaves convert's TARGET.vdkit-tmp.RANDOM behind; nothing else makes such names.
void remove_leftovers(const std::string& target) {
  fs::path t(target);
  std::string prefix = t.filename().string() + ".vdkit-tmp.";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(t.parent_path().empty() ? "." : t.parent_path(), ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
}

struct GuestJob {
  const PlanGuest* guest;
  uint64_t size = 0;  // the disks' virtual sizes, 0 where a disk cannot be opened (it fails when run)
};

class Runner {
 public:
  Runner(StateFile& state, const BatchOptions& opts, EventLog& log, unsigned threads)
      : state_(state), opts_(opts), log_(log), threads_(threads) {}

  GuestOutcome run(const GuestJob& job) {
    const PlanGuest& g = *job.guest;
    GuestOutcome out;
    out.name = g.name;
    out.disks = g.disks.size();
    out.virtual_size = job.size;
    GuestRecord rec = state_.get(g.name);
    if (rec.status == GuestStatus::kDone) {
      out = from_record(g.name, rec);
      out.result = "skipped";
      log_.finished(g.name, out.result, nlohmann::json::object());
      return out;
    }
    log_.start(g.name, job.size);
    auto t0 = std::chrono::steady_clock::now();
    Status st = convert_guest(g, job.size, rec, out);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Whatever a conversion reports once a stop was asked (ECANCELED, or an EINTR somewhere) is the interruption.
    bool stopped = opts_.stop && opts_.stop->load();
    if (!st.ok()) {
      // A guest is all its disks or nothing: the targets this plan renamed into place for it go too (and only
      // those: a file that was there before and that no attempt replaced is never removed).
      // A device or export is never removed: its resume record lets the next run continue it.
      for (const auto& d : g.disks)
        if (!d.in_place) {
          remove_leftovers(d.target);
          if (std::find(rec.written.begin(), rec.written.end(), d.target) != rec.written.end())
            ::unlink(d.target.c_str());
        }
      rec.written.clear();
      out.result = stopped ? "interrupted" : "failed";
      out.error = stopped ? "interrupted by a signal" : st.message();
      rec.status = stopped ? GuestStatus::kInterrupted : GuestStatus::kFailed;
      rec.error = out.error;
    } else {
      out.result = "done";
      rec.status = GuestStatus::kDone;
      rec.error.clear();
    }
    rec.bytes_read = out.bytes_read;
    rec.bytes_written = out.bytes_written;
    rec.seconds = out.seconds;
    rec.virtual_size = out.virtual_size;
    rec.warnings = out.warnings;
    rec.disks = out.disks;
    Status saved = state_.put(g.name, rec);
    if (!saved.ok() && out.result == "done") {
      out.result = "failed";
      out.error = "saving the state: " + saved.message();
    }
    nlohmann::json detail = {{"bytes-read", out.bytes_read}, {"bytes-written", out.bytes_written},
                             {"seconds", out.seconds}};
    if (!out.error.empty()) detail["error"] = out.error;
    log_.finished(g.name, out.result, detail);
    return out;
  }

 private:
  static GuestOutcome from_record(const std::string& name, const GuestRecord& r) {
    GuestOutcome o;
    o.name = name;
    o.disks = r.disks;
    o.virtual_size = r.virtual_size;
    o.bytes_read = r.bytes_read;
    o.bytes_written = r.bytes_written;
    o.seconds = r.seconds;
    o.warnings = r.warnings;
    return o;
  }

  // Every disk of the guest opened, fixed together and mapped together, as `convert --fixup --sparsify DISK0 DISK1
  // FOLDER` does: a VG over two disks, /boot on one and root on another, an fstab naming /dev/xvdb1. The fixups come
  // first, so the map of unused blocks is the fixed guest's. The sources are only read.
  Result<std::vector<std::shared_ptr<BlockDevice>>> prepared_disks(const PlanGuest& g, fixups::FixupResult* fix,
                                                                   std::vector<guestfs::SparseMap>* maps) {
    std::vector<std::shared_ptr<BlockDevice>> disks;
    for (size_t i = 0; i < g.disks.size(); ++i) {
      auto dev = open_plan_disk(g.disks[i].source, opts_.open);
      if (!dev.ok()) return dev.status().Context("disk " + std::to_string(i) + " (" + g.disks[i].source + ")");
      disks.push_back(std::move(*dev));
    }
    if (g.fixup) {
      VDKIT_ASSIGN_OR_RETURN(disks, fixups::make_fixed_overlays(disks, g.fixup_options, fix));
    }
    if (g.sparsify) {
      std::vector<GuestDisk> guest;
      for (size_t i = 0; i < disks.size(); ++i) guest.push_back({g.disks[i].source, disks[i]});
      VDKIT_ASSIGN_OR_RETURN(disks, guestfs::make_sparsified_devices(guest, maps));
    }
    return disks;
  }

  Status convert_guest(const PlanGuest& g, uint64_t total, GuestRecord& rec, GuestOutcome& out) {
    for (const auto& d : g.disks) {
      if (d.in_place) continue;
      fs::path dir = fs::path(d.target).parent_path();
      std::error_code ec;
      if (!dir.empty()) fs::create_directories(dir, ec);
      if (ec) return Status::Error(ec.value(), "creating " + dir.string() + ": " + ec.message());
    }
    rec.targets.clear();
    for (const auto& d : g.disks) {
      rec.targets.push_back(d.target);
      if (d.in_place) continue;  // convert checks a device (--overwrite, size, O_EXCL) and an export's size
      remove_leftovers(d.target);
      bool ours = std::find(rec.written.begin(), rec.written.end(), d.target) != rec.written.end();
      if (exists(d.target) && !ours && !opts_.overwrite)
        return Status::Error(EEXIST, "the target " + d.target +
                                         " exists and was not written by this plan (use --overwrite to replace it)");
    }
    rec.status = GuestStatus::kRunning;
    rec.attempted = true;
    VDKIT_RETURN_IF_ERROR(state_.put(g.name, rec));
    fixups::FixupResult fix;
    std::vector<guestfs::SparseMap> maps;
    std::vector<std::shared_ptr<BlockDevice>> prepared;
    if (g.fixup || g.sparsify) {
      log_.phase(g.name, g.fixup ? "inspecting and fixing" : "mapping unused blocks");
      VDKIT_ASSIGN_OR_RETURN(prepared, prepared_disks(g, &fix, &maps));
      for (const auto& w : fix.plan.warnings) {
        log_.warning(g.name, w.code, w.message);
        out.warnings.push_back(w.code);
      }
    }
    uint64_t base = 0;
    for (size_t i = 0; i < g.disks.size(); ++i) {
      if (opts_.stop && opts_.stop->load()) return Status::Error(ECANCELED, "interrupted");
      const PlanDisk& d = g.disks[i];
      log_.phase(g.name, "disk " + std::to_string(i + 1) + "/" + std::to_string(g.disks.size()));
      ConvertOptions o;
      o.format = g.format == "qcow2" ? TargetFormat::kQcow2 : TargetFormat::kRaw;
      o.compress = !g.compression.empty();
      o.codec = g.compression == "zstd" ? Codec::kZstd : Codec::kDeflate;
      o.threads = threads_;
      o.overwrite = true;  // checked above: what is there is this plan's own earlier target, or --overwrite was given
      o.sync = opts_.sync;
      o.open = opts_.open;
      o.target_io = opts_.target_io;
      o.cancel = opts_.stop;
      o.progress = [&, base](uint64_t done, uint64_t) { log_.progress(g.name, base + done, total); };
      if (!prepared.empty()) {
        // Opened (fixed, mapped) above; convert_path's own open of the source then only checks that it still reads.
        std::shared_ptr<BlockDevice> dev = prepared[i];
        o.prepare_source = [dev](std::shared_ptr<BlockDevice>) -> Result<std::shared_ptr<BlockDevice>> { return dev; };
      }
      if (d.in_place && !o.prepare_source && !opts_.resume_dir.empty()) {
        // Written in place: a resume record per disk, beside the state file; a redo continues from it. (A run
        // with fixups or sparsify keeps none: each run of the fixups writes the guest anew, so it starts over.)
        o.state_file = opts_.resume_dir + "/" + g.name + "-disk" + std::to_string(i) + ".resume.json";
        o.resume = exists(o.state_file);
      }
      auto stats = convert_path(d.source, d.target, o);
      if (!stats.ok()) return stats.status().Context("disk " + std::to_string(i) + " (" + d.source + ")");
      if (std::find(rec.written.begin(), rec.written.end(), d.target) == rec.written.end()) {
        rec.written.push_back(d.target);
        VDKIT_RETURN_IF_ERROR(state_.put(g.name, rec));
      }
      base += stats->virtual_size;
      out.bytes_read += stats->bytes_read;
      out.bytes_written += stats->bytes_written;
    }
    return Status::Ok();
  }

  StateFile& state_;
  const BatchOptions& opts_;
  EventLog& log_;
  unsigned threads_;
};

}  // namespace

size_t BatchReport::failed() const {
  return static_cast<size_t>(std::count_if(guests.begin(), guests.end(), [](const GuestOutcome& g) {
    return g.result == "failed";
  }));
}

unsigned threads_per_job(unsigned cores, unsigned jobs) {
  if (cores == 0) cores = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, cores / std::max(1u, jobs));
}

Result<std::shared_ptr<BlockDevice>> open_plan_disk(const std::string& source, const OpenOptions& open) {
  if (!source_has_file_name(source)) {
    VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr dev, open_nbd_source(source));
    return std::shared_ptr<BlockDevice>(std::move(dev));
  }
  VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr dev, open_image(source, open));
  return std::shared_ptr<BlockDevice>(std::move(dev));
}

BatchReport run_batch(const Plan& plan, const std::vector<size_t>& rows, StateFile& state, const BatchOptions& opts,
                      EventLog& log) {
  std::vector<size_t> chosen = rows;
  if (chosen.empty())
    for (size_t i = 0; i < plan.guests.size(); ++i) chosen.push_back(i);
  // Leftovers of a killed run go first, so none stays behind even for a guest this run does not reach.
  for (size_t i : chosen)
    if (state.get(plan.guests[i].name).status != GuestStatus::kDone)
      for (const auto& d : plan.guests[i].disks)
        if (!d.in_place) remove_leftovers(d.target);
  std::vector<GuestJob> jobs;
  for (size_t i : chosen) {
    GuestJob j{&plan.guests[i], 0};
    for (const auto& d : plan.guests[i].disks) {
      auto dev = open_plan_disk(d.source, opts.open);
      if (dev.ok()) j.size += (*dev)->size();
    }
    jobs.push_back(j);
  }
  // Biggest first, so the longest conversion does not start last and leave the other cores idle at the end.
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return jobs[a].size > jobs[b].size; });
  BatchReport report;
  report.guests.resize(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    report.guests[i].name = jobs[i].guest->name;
    report.guests[i].disks = jobs[i].guest->disks.size();
    report.guests[i].virtual_size = jobs[i].size;
    report.guests[i].result = "not-run";
  }
  unsigned cores = opts.cores ? opts.cores : std::max(1u, std::thread::hardware_concurrency());
  // Never more conversions at once than cores, nor than guests: each gets at least one worker thread, and
  // together they stay within the cores.
  unsigned n = std::max(1u, std::min({opts.jobs, cores, static_cast<unsigned>(jobs.size())}));
  Runner runner(state, opts, log, threads_per_job(cores, n));
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (unsigned w = 0; w < n; ++w)
    workers.emplace_back([&] {
      // SIGINT/SIGTERM go to the calling thread, whose handler sets opts.stop; a worker (and the conversion
      // threads it starts, which inherit its mask) then never sees EINTR from them.
      sigset_t block;
      sigemptyset(&block);
      sigaddset(&block, SIGINT);
      sigaddset(&block, SIGTERM);
      sigaddset(&block, SIGHUP);
      pthread_sigmask(SIG_BLOCK, &block, nullptr);
      for (;;) {
        if (opts.stop && opts.stop->load()) return;
        size_t k = next.fetch_add(1);
        if (k >= order.size()) return;
        report.guests[order[k]] = runner.run(jobs[order[k]]);
      }
    });
  for (auto& t : workers) t.join();
  report.interrupted = opts.stop && opts.stop->load();
  return report;
}

std::string summary_table(const BatchReport& r) {
  auto pad = [](std::string v, size_t w, bool right) {
    if (v.size() < w) v = right ? std::string(w - v.size(), ' ') + v : v + std::string(w - v.size(), ' ');
    return v;
  };
  auto row = [&](const std::string& guest, const std::string& disks, const std::string& read,
                 const std::string& written, const std::string& secs, const std::string& result,
                 const std::string& notes) {
    return pad(guest, 20, false) + " " + pad(disks, 5, true) + " " + pad(read, 10, true) + " " +
           pad(written, 10, true) + " " + pad(secs, 8, true) + "  " + pad(result, 11, false) + " " + notes + "\n";
  };
  std::string out = row("GUEST", "DISKS", "READ", "WRITTEN", "SECONDS", "RESULT", "WARNINGS / ERROR");
  for (const auto& g : r.guests) {
    std::string notes;
    for (const auto& w : g.warnings) notes += (notes.empty() ? "" : ", ") + w;
    if (!g.error.empty()) notes = g.error;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", g.seconds);
    out += row(g.name, std::to_string(g.disks), human_size(g.bytes_read), human_size(g.bytes_written), secs, g.result,
               notes);
  }
  return out;
}

nlohmann::json summary_json(const BatchReport& r) {
  nlohmann::json j;
  j["guests"] = nlohmann::json::array();
  std::vector<std::string> failed;
  for (const auto& g : r.guests) {
    nlohmann::json e = {{"name", g.name},           {"disks", g.disks},
                        {"virtual-size", g.virtual_size}, {"bytes-read", g.bytes_read},
                        {"bytes-written", g.bytes_written}, {"seconds", g.seconds},
                        {"warnings", g.warnings},   {"result", g.result}};
    if (!g.error.empty()) e["error"] = g.error;
    if (g.result == "failed") failed.push_back(g.name);
    j["guests"].push_back(e);
  }
  j["failed"] = failed;
  j["interrupted"] = r.interrupted;
  return j;
}

}  // namespace vdkit::batch
