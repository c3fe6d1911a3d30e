// `vdkit batch`: runs a migration plan (one guest per row) in parallel, resumable, with live progress and events.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <cstdio>
#include <cstdlib>

#include "batch/dry_run.h"
#include "batch/kube.h"
#include "batch/runner.h"
#include "cli/command.h"

namespace vdkit::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop(int) { g_stop.store(true); }

struct BatchArgs {
  std::string plan;
  unsigned jobs = 1;
  bool resume = false;
  std::string state;
  long index = -1;
  std::string events;
  bool output_json = false;
  bool dry_run = false;
  bool overwrite = false;
  bool no_sync = false;
  bool allow_external_paths = false;
  std::string emit_dir;
  batch::KubeOptions kube;
};

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The state file: --state FILE, or --state DIR/ (one file per row there, for the pods of an Indexed Job), or
// PLAN.state.json beside the plan.
std::string state_path(const BatchArgs& a, const batch::Plan& plan, long index) {
  if (a.state.empty()) return a.plan + (index >= 0 ? "." + std::to_string(index) : std::string()) + ".state.json";
  if (a.state.back() == '/' || is_dir(a.state)) {
    std::string dir = a.state.back() == '/' ? a.state.substr(0, a.state.size() - 1) : a.state;
    ::mkdir(dir.c_str(), 0755);
    std::string who = index >= 0 ? plan.guests[static_cast<size_t>(index)].name : "all";
    return dir + "/" + who + ".state.json";
  }
  return a.state;
}

int run_batch_cmd(BatchArgs& a) {
  auto plan = batch::read_plan(a.plan);
  if (!plan.ok()) {
    fail("batch", plan.status());
    return kExitUsage;
  }
  const std::string& text = plan->text;

  long index = a.index;
  if (index < 0) {
    // The contract of a Kubernetes Indexed Job: each pod gets its row in JOB_COMPLETION_INDEX.
    if (const char* env = std::getenv("JOB_COMPLETION_INDEX"); env && *env) {
      char* end = nullptr;
      index = std::strtol(env, &end, 10);
      if (*end || index < 0) {
        std::fprintf(stderr, "vdkit batch: JOB_COMPLETION_INDEX=%s is not a row number\n", env);
        return kExitUsage;
      }
    }
  }
  if (index >= static_cast<long>(plan->guests.size())) {
    std::fprintf(stderr, "vdkit batch: index %ld does not exist: the plan has %zu rows (indexes 0 to %zu)\n", index,
                 plan->guests.size(), plan->guests.size() - 1);
    return kExitUsage;
  }
  std::vector<size_t> rows;
  if (index >= 0) rows.push_back(static_cast<size_t>(index));

  if (!a.emit_dir.empty()) {
    a.kube.parallelism = a.jobs;
    std::vector<std::string> notes;
    Status st = batch::emit_kubernetes(*plan, text, a.emit_dir, a.kube, notes);
    if (!st.ok()) return fail("batch", st);
    for (const auto& n : notes) std::fprintf(stderr, "vdkit batch: note: %s\n", n.c_str());
    std::printf("wrote %s/configmap.yaml, %s/job.yaml and %s/Containerfile (%zu rows, parallelism %u)\n",
                a.emit_dir.c_str(), a.emit_dir.c_str(), a.emit_dir.c_str(), plan->guests.size(), a.jobs);
    return kExitOk;
  }

  OpenOptions open;
  open.allow_external_paths = a.allow_external_paths;
  if (a.dry_run) {
    batch::DryRunReport r = batch::dry_run(*plan, rows, open);
    if (a.output_json) std::printf("%s\n", r.json.dump(2).c_str());
    else std::fputs(r.text.c_str(), stdout);
    return r.problems ? kExitFailure : kExitOk;
  }

  // One run per state file: a second one would remove the first one's temporary files and overwrite its state.
  const std::string spath = state_path(a, *plan, index);
  const std::string lock_path = spath + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return fail("batch", Status::FromErrno(errno, "creating the lock " + lock_path));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "vdkit batch: another vdkit batch is running with the state file %s (it holds %s)\n",
                 spath.c_str(), lock_path.c_str());
    ::close(lock_fd);
    return kExitFailure;
  }
  bool existed = false;
  auto state = batch::StateFile::open(spath, batch::plan_fingerprint(text), existed);
  if (!state.ok()) return fail("batch", state.status());
  if (existed && !a.resume) {
    std::fprintf(stderr,
                 "vdkit batch: the state file %s exists from an earlier run: use --resume to continue it (finished "
                 "guests are skipped), or remove it to start over\n",
                 state->path().c_str());
    return kExitUsage;
  }

  FILE* events = nullptr;
  if (a.events == "-") events = stdout;
  else if (!a.events.empty() && !(events = std::fopen(a.events.c_str(), a.resume ? "a+" : "w")))
    return fail("batch", Status::FromErrno(errno, "opening the events file " + a.events));
  if (events && events != stdout && a.resume && std::fseek(events, -1, SEEK_END) == 0 && std::fgetc(events) != '\n')
    std::fputc('\n', events);  // a killed run may have left half a line: the next event starts on its own line
  FILE* live = isatty(STDERR_FILENO) ? stderr : nullptr;

  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C ends the process at once
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  batch::BatchOptions o;
  o.jobs = std::max(1u, a.jobs);
  o.overwrite = a.overwrite;
  o.sync = !a.no_sync;
  o.open = open;
  o.target_io = target_io();
  o.stop = &g_stop;
  o.resume_dir = std::filesystem::path(spath).parent_path().string();
  if (o.resume_dir.empty()) o.resume_dir = ".";
  batch::EventLog log(events, live, rows.empty() ? plan->guests.size() : 1);
  batch::BatchReport report = batch::run_batch(*plan, rows, *state, o, log);
  log.close_live();
  if (events && events != stdout) std::fclose(events);

  FILE* out = (a.events == "-") ? stderr : stdout;
  if (a.output_json) std::fprintf(out, "%s\n", batch::summary_json(report).dump(2).c_str());
  else std::fputs(batch::summary_table(report).c_str(), out);
  std::fflush(out);
  if (report.interrupted) {
    std::fprintf(stderr, "vdkit batch: interrupted; the state is saved in %s: run again with --resume to go on\n",
                 state->path().c_str());
    return kExitFailure;
  }
  if (size_t f = report.failed()) {
    std::string names;
    for (const auto& g : report.guests)
      if (g.result == "failed") names += (names.empty() ? "" : ", ") + g.name;
    std::fprintf(stderr, "vdkit batch: %zu guest%s failed: %s\n", f, f == 1 ? "" : "s", names.c_str());
    return kExitFailure;
  }
  return kExitOk;
}

CommandRegistrar reg(
    {"batch", "Convert many guests from a plan (CSV or JSON) in parallel, resumable, with progress and events",
     [](CLI::App& sub) -> std::function<int()> {
       auto a = std::make_shared<BatchArgs>();
       sub.description(
           "Run a migration plan: one guest per row, each guest's disks converted (with the KVM fixups when the\n"
           "row asks), several guests at a time.\n"
           "\n"
           "PLAN is a CSV file with a header row, or JSON (a list of objects with the same keys). Columns:\n"
           "  name     the guest's name (unique in the plan)\n"
           "  disks    its disks, separated by ';': image files (relative to the plan's folder) or NBD URIs\n"
           "  output   the folder its targets go to (created if missing)\n"
           "  format   raw or qcow2\n"
           "  fixup    yes or no\n"
           "  compression  none, zlib or zstd (qcow2 only; optional)\n"
           "  targets  the disks' targets instead of output's names, ';'-separated, one per disk (optional):\n"
           "           files, block devices or NBD URIs, written in place as `vdkit convert` writes them\n"
           "           (a block device needs --overwrite); a device or export that fails keeps a resume\n"
           "           record beside the state file, and --resume continues it from there\n"
           "  sparsify yes or no (optional): leave out what the guest's file systems do not use, as\n"
           "           `vdkit convert --sparsify` (after the fixups when both are asked)\n"
           "  and any fixup option of `vdkit fixup` by its name (device-names, network, backup, kernel, ...).\n"
           "Each disk's target is named after its file with the format's extension (web1-disk0.vmdk becomes\n"
           "web1-disk0.qcow2); an NBD source's target is NAME-diskN.EXT, N its position in the row.\n"
           "The disks are listed in the order the guest names them (xvda, xvdb, ...): the fixups are planned\n"
           "over all of them at once, as `vdkit convert --fixup DISK0 DISK1 FOLDER` does (a VG spanning two\n"
           "disks, /data on /dev/xvdb1), and each disk's target gets its share of the changes.\n"
           "\n"
           "Guests run --jobs at a time (at most one per core), biggest first; the conversions' worker threads\n"
           "together never exceed the machine's cores. One failed guest does not stop the others. A guest is\n"
           "all its disks or nothing: when one disk fails, the targets this plan wrote for its other disks are\n"
           "removed too (a file that was there before is never removed). A target that is one of the plan's\n"
           "sources is refused.\n"
           "\n"
           "The state file (PLAN.state.json, or --state) is rewritten atomically after every change. After an\n"
           "interruption (SIGINT, SIGTERM, a crash, a reboot) --resume skips finished guests and redoes the\n"
           "others from the start, removing what their earlier attempt left. SIGINT and SIGTERM stop launching,\n"
           "let running conversions remove their temporary files, save the state and exit 1.\n"
           "\n"
           "On a terminal, one live line per running guest (phase, percent, rate, time left) and an overall\n"
           "line. --events FILE (or '-') writes JSON Lines events: start, phase, progress, warning, done,\n"
           "failed, interrupted. At the end a summary table (or JSON with --output-json).\n"
           "\n"
           "Kubernetes: --index I (or JOB_COMPLETION_INDEX, set by an Indexed Job) runs one row only, counted\n"
           "from 0 (the first row after the header is index 0).\n"
           "--emit-kubernetes DIR writes a ConfigMap with the plan, an Indexed Job with one pod per row, and a\n"
           "Containerfile that builds vdkit from its sources on Debian 12.\n"
           "\n"
           "A second run with the same state file while one is running is refused (a lock beside it).\n"
           "\n"
           "Exit status: 0 when every guest is done; 1 when any failed or the run was interrupted (the\n"
           "failed guests are listed); 2 for bad usage or a plan with errors (named by row and column).");
       sub.add_option("PLAN", a->plan, "The plan: CSV with a header row, or JSON")->required();
       sub.add_option("-j,--jobs", a->jobs, "Guests converted at a time (at most one per core)")->default_val(1)->check(CLI::Range(1u, 256u));
       sub.add_flag("--resume", a->resume, "Continue the run recorded in the state file: skip finished guests");
       sub.add_option("--state", a->state,
                      "The state file (default PLAN.state.json); a folder (ending in /) holds one file per row");
       sub.add_option("--index", a->index,
                      "Run only one row, counted from 0 (the first row after the header is 0); default "
                      "$JOB_COMPLETION_INDEX when set")
           ->check(CLI::NonNegativeNumber);
       sub.add_option("--events", a->events, "Write JSON Lines events to FILE ('-' for standard output)");
       sub.add_flag("--output-json", a->output_json, "Print the summary (or the --dry-run report) as JSON");
       sub.add_flag("--dry-run", a->dry_run,
                    "Open every disk, inspect every guest, list its fixups, estimate each target and check the "
                    "free space of each target folder; write nothing");
       sub.add_flag("--overwrite", a->overwrite, "Replace targets that exist before this plan wrote them");
       sub.add_flag("--no-sync", a->no_sync, "Do not flush targets to stable storage before renaming them");
       sub.add_flag("--allow-external-paths", a->allow_external_paths,
                    "Follow backing, extent and data-file names that are absolute or leave the image's folder");
       sub.add_option("--emit-kubernetes", a->emit_dir,
                      "Write configmap.yaml, job.yaml (an Indexed Job, parallelism --jobs) and Containerfile to DIR");
       sub.add_option("--image", a->kube.image, "With --emit-kubernetes: the container image")->default_val("vdkit:latest");
       sub.add_option("--pvc", a->kube.pvc, "With --emit-kubernetes: the PersistentVolumeClaim for the targets")
           ->default_val("vdkit-targets");
       sub.add_option("--mount", a->kube.mount, "With --emit-kubernetes: where the pods mount that claim")
           ->default_val("/targets");
       return [a] {
         if (a->output_json && a->events == "-" && !a->dry_run) {
           std::fprintf(stderr, "vdkit batch: --output-json and --events - both want standard output\n");
           return kExitUsage;
         }
         return run_batch_cmd(*a);
       };
     }});

}  // namespace
}  // namespace vdkit::cli
