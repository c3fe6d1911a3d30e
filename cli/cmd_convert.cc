// `vdkit convert`: streaming conversion of a file, stdin stream or NBD export to sparse raw or qcow2.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/convert/convert_folder.h"
#include "blockcore/convert/convert_job.h"
#include "cli/command.h"
#include "cli/fixup_flags.h"
#include "fixups/run.h"

namespace vdkit::cli {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  g_cancel.store(true);
}

// Installs SIGINT/SIGTERM/SIGHUP handlers that ask the pipeline to stop, so
// the temporary target is removed; SIGPIPE becomes an EPIPE write error.
void install_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::string fmt_duration(double s) {
  if (s < 0 || s > 1e7) return "--:--";
  auto t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

// The progress line on standard error: redrawn in place on a terminal, a line at a time (at most every 2 s) elsewhere.
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(STDERR_FILENO)), t0_(std::chrono::steady_clock::now()) {}
  void update(uint64_t done, uint64_t total, bool final = false) {
    auto now = std::chrono::steady_clock::now();
    double since_draw = std::chrono::duration<double>(now - last_).count();
    if (!final && since_draw < (tty_ ? 0.1 : 2.0)) return;
    last_ = now;
    double el = std::chrono::duration<double>(now - t0_).count();
    double rate = el > 0 ? done / el : 0;
    double pct = total ? 100.0 * done / total : 0;
    std::string eta = total && rate > 0 ? fmt_duration((total - std::min(done, total)) / rate) : "--:--";
    char bar[31];
    int fill = total ? static_cast<int>(30.0 * done / total) : 0;
    for (int i = 0; i < 30; ++i) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    std::fprintf(stderr, "%s[%s] %5.1f%%  %s / %s  %s/s  ETA %s%s", tty_ ? "\r" : "", bar, pct,
                 human_size(done).c_str(), total ? human_size(total).c_str() : "?", human_size((uint64_t)rate).c_str(),
                 eta.c_str(), tty_ ? "   " : "\n");
    if (final && tty_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::chrono::steady_clock::time_point t0_, last_{};
};

struct ConvertArgs {
  ImageOptions image;
  std::string out_format = "raw";
  bool compress = false;
  std::string compression = "zlib";
  bool progress = false;
  bool target_is_zero = false;
  bool overwrite = false;
  bool output_json = false;
  bool no_sync = false;
  uint64_t cluster_size = 64u << 10;
  unsigned threads = 0;
  std::string source, target;
  // --fixup (issue 6): the KVM fixups applied in an overlay on the way.
  bool fixup = false;
  FixupFlags fixup_flags;
};

nlohmann::json stats_json(const ConvertStats& s) {
  nlohmann::json j;
  j["virtual-size"] = s.virtual_size;
  j["bytes-read"] = s.bytes_read;
  j["bytes-written"] = s.bytes_written;
  j["bytes-skipped-holes"] = s.bytes_holes;
  j["bytes-skipped-zeros"] = s.bytes_zeros;
  j["allocated-bytes"] = s.allocated_bytes;
  j["seconds"] = s.seconds;
  return j;
}

// TARGET is a folder: one target per disk of the source (an XVA's disks, or the one disk of anything else).
int run_convert_to_folder(const ConvertArgs& a, const ConvertOptions& o) {
  if (a.fixup && a.source == "-") {
    std::fprintf(stderr, "vdkit convert: --fixup needs a file or NBD source\n");
    return kExitUsage;
  }
  auto done = convert_to_folder(a.source, a.target, o);
  if (!done.ok()) {
    if (a.progress) std::fprintf(stderr, "\n");
    if (done.status().code() == ECANCELED && g_signal.load()) {
      std::fprintf(stderr, "vdkit convert: interrupted by signal %d (%s); no target was written\n", g_signal.load(),
                   strsignal(g_signal.load()));
      return kExitFailure;
    }
    std::fprintf(stderr, "vdkit convert: %s (no target was written)\n", done.status().message().c_str());
    return kExitFailure;
  }
  if (a.output_json) {
    nlohmann::json j;
    j["source"] = a.source;
    j["target-format"] = a.out_format;
    j["targets"] = nlohmann::json::array();
    for (const auto& t : *done) {
      auto s = stats_json(t.stats);
      s["target"] = t.path;
      j["targets"].push_back(s);
    }
    std::printf("%s\n", j.dump(4).c_str());
  } else {
    for (const auto& t : *done) std::printf("%s\n", t.path.c_str());
  }
  return kExitOk;
}

int run_convert(const ConvertArgs& a) {
  ConvertOptions o;
  o.target_io = target_io();
  o.format = a.out_format == "qcow2" ? TargetFormat::kQcow2 : TargetFormat::kRaw;
  o.compress = a.compress;
  o.codec = a.compression == "zstd" ? Codec::kZstd : Codec::kDeflate;
  o.cluster_size = a.cluster_size;
  o.target_is_zero = a.target_is_zero;
  o.overwrite = a.overwrite;
  o.sync = !a.no_sync;
  o.threads = a.threads;
  o.open = a.image.open_options();
  o.cancel = &g_cancel;
  if (a.compress && o.format != TargetFormat::kQcow2) {
    std::fprintf(stderr, "vdkit convert: -c (compression) needs -O qcow2\n");
    return kExitUsage;
  }
  if (a.source == "-" && !a.image.format.empty() && a.image.format != "raw" && a.image.format != "vmdk" &&
      a.image.format != "xva") {
    std::fprintf(stderr, "vdkit convert: standard input can hold a raw or streamOptimized VMDK stream, or an XVA\n");
    return kExitUsage;
  }
  ProgressBar bar;
  if (a.progress) o.progress = [&bar](uint64_t done, uint64_t total) { bar.update(done, total); };
  fixups::FixupResult fix;
  if (!a.fixup && a.fixup_flags.any_given()) {
    std::fprintf(stderr, "vdkit convert: --device-names, --network, --no-network and --backup need --fixup\n");
    return kExitUsage;
  }
  if (a.fixup) {
    auto parsed = a.fixup_flags.options();
    if (!parsed.ok()) {
      std::fprintf(stderr, "vdkit convert: %s\n", parsed.status().message().c_str());
      return kExitUsage;
    }
    const fixups::FixupOptions fo = *parsed;
    o.prepare_source = [fo, &fix](std::shared_ptr<BlockDevice> src) {
      return fixups::make_fixed_overlay(std::move(src), fo, &fix);
    };
  }
  install_handlers();
  if (a.target != "-" && is_folder_target(a.target)) return run_convert_to_folder(a, o);
  auto stats = convert_path(a.source, a.target, o);
  if (!stats.ok()) {
    if (a.progress) std::fprintf(stderr, "\n");
    if (stats.status().code() == ECANCELED && g_signal.load()) {
      std::fprintf(stderr, "vdkit convert: interrupted by signal %d (%s); %s\n", g_signal.load(),
                   strsignal(g_signal.load()),
                   a.target == "-" ? "standard output holds an incomplete image"
                                   : "no target was written and the temporary file was removed");
      return kExitFailure;
    }
    std::fprintf(stderr, "vdkit convert: %s%s\n", stats.status().message().c_str(),
                 a.target == "-" ? "" : " (no target was written)");
    return kExitFailure;
  }
  if (a.progress) bar.update(stats->virtual_size, stats->virtual_size, true);
  if (a.fixup && !a.output_json) std::fputs(fixups::to_human(fix.plan).c_str(), a.target == "-" ? stderr : stdout);
  if (a.output_json) {
    const ConvertStats& s = *stats;
    nlohmann::json j;
    j["source"] = a.source;
    j["target"] = a.target;
    j["target-format"] = a.out_format;
    if (a.compress) j["compression"] = a.compression;
    j["virtual-size"] = s.virtual_size;
    j["bytes-read"] = s.bytes_read;
    j["bytes-written"] = s.bytes_written;
    j["bytes-skipped-holes"] = s.bytes_holes;
    j["bytes-skipped-zeros"] = s.bytes_zeros;
    if (a.target != "-") j["allocated-bytes"] = s.allocated_bytes;
    j["seconds"] = s.seconds;
    j["throughput-bytes-per-second"] = s.seconds > 0 ? static_cast<uint64_t>(s.virtual_size / s.seconds) : 0;
    j["source-passes"] = s.two_passes ? 2 : 1;
    if (a.fixup) j["fixup"] = fixups::to_json(fix.plan);
    // With the image on standard output, the summary goes to standard error.
    std::string text = j.dump(4) + "\n";
    std::fputs(text.c_str(), a.target == "-" ? stderr : stdout);
  }
  return kExitOk;
}

CommandRegistrar reg(
    {"convert", "Convert a disk (VMDK, qcow2, VHD, VHDX, XVA, raw, stdin stream, NBD export) to sparse raw or qcow2",
     [](CLI::App& sub) -> std::function<int()> {
       auto a = std::make_shared<ConvertArgs>();
       sub.description(
           "Convert SOURCE to TARGET in one streaming pass, without a scratch copy.\n"
           "\n"
           "SOURCE is an image file of any format vdkit reads (VMDK of every kind, qcow2 with its backing\n"
           "chain, VHD and VHDX with their parents, XVA, raw); '-' for standard input, where a\n"
           "streamOptimized VMDK, a raw stream or an XVA is read front to back with no seeks (so\n"
           "`curl URL | vdkit convert - disk.qcow2` works); or an NBD URI\n"
           "(nbd://host[:port]/export, nbd+unix:///export?socket=PATH) read through libnbd, whose block\n"
           "status lets holes be skipped.\n"
           "\n"
           "TARGET is a file, or '-' for standard output. A file target is written as\n"
           "TARGET.vdkit-tmp.RANDOM beside it and renamed only when complete and flushed; on an error or\n"
           "on SIGINT/SIGTERM that file is removed. An existing TARGET is replaced only with --overwrite.\n"
           "The source is opened read-only and never changes.\n"
           "\n"
           "TARGET may be a folder (an existing directory, or a name ending in '/'): each disk of SOURCE\n"
           "becomes one target there, named after the source's file (web1.vmdk -> web1.raw) or, for disks\n"
           "with no file name of their own, NAME-diskN.raw. An XVA (`xe vm-export`, plain, gzip or zstd,\n"
           "a file or '-') is read once, front to back with no temporary file: NAME is the VM's name in\n"
           "ova.xml and N each disk's place in the VM's device order. Every chunk is checked against its\n"
           "SHA-1 or xxh64 before it is written; a mismatch stops the run, and the targets get their\n"
           "names only when all of them are complete, so a failed run leaves none. The targets' paths are\n"
           "printed one a line (with --output-json, a JSON summary with one entry per target).\n"
           "\n"
           "Sparse: holes in the source are never read; 4 KiB blocks of zeros inside data are not written\n"
           "(a raw target keeps them as holes, a qcow2 target allocates no cluster for them).\n"
           "The qcow2 target is version 3, 64 KiB clusters by default, 16-bit refcounts. With -c every\n"
           "cluster that shrinks is compressed, on all cores, with zlib (raw deflate) or zstd.\n"
           "\n"
           "To a pipe, a raw target streams in order (holes written as zeros). A qcow2 target to a pipe is\n"
           "laid out in advance: the source is read twice, once to find which clusters hold data (and their\n"
           "compressed sizes) so the metadata can come first, then for the data. That needs a source that\n"
           "can be read twice: a standard-input source with a qcow2 standard-output target is refused.\n"
           "\n"
           "Exit status: 0 on success; 1 on failure (unreadable source, full disk, interrupted), with a\n"
           "message naming the problem; 2 for bad usage.");
       a->image.add_to(sub);
       sub.add_option("-O,--target-format", a->out_format, "Target format")
           ->check(CLI::IsMember({"raw", "qcow2"}))
           ->default_val("raw");
       sub.add_flag("-c,--compress", a->compress, "Compress qcow2 clusters (zlib unless --compression says zstd)");
       sub.add_option("--compression", a->compression, "Compression type for -c")
           ->check(CLI::IsMember({"zlib", "zstd"}))
           ->default_val("zlib");
       sub.add_option("--cluster-size", a->cluster_size, "qcow2 cluster size in bytes (a power of two, 512 to 2 MiB)")
           ->default_val(65536);
       sub.add_flag("-p,--progress", a->progress,
                    "Show progress on standard error: percent, bytes, rate and time left");
       sub.add_flag("--target-is-zero", a->target_is_zero,
                    "The target reads as zeros already, so zeros are never written (always true of the new "
                    "files vdkit creates; accepted for qemu-img compatibility)");
       sub.add_flag("--overwrite", a->overwrite, "Replace TARGET if it exists");
       sub.add_flag("--output-json", a->output_json,
                    "Print a JSON summary (bytes read, written, skipped as holes or zeros, seconds, "
                    "throughput) on standard output, or on standard error when TARGET is '-'");
       sub.add_flag("--no-sync", a->no_sync, "Do not flush the target to stable storage before renaming it");
       sub.add_option("-j,--threads", a->threads, "Worker threads (default: cores + 2)");
       sub.add_flag("--fixup", a->fixup,
                    "Apply the Xen/VMware-to-KVM fixups of `vdkit fixup` in a memory overlay on the way (the\n"
                    "source is unchanged) and print their diffs and warnings at the end");
       a->fixup_flags.add_to(sub, "With --fixup: ");
       sub.add_option("SOURCE", a->source, "Image file, '-' for standard input, or an NBD URI")->required();
       sub.add_option("TARGET", a->target, "Target file, '-' for standard output, or a folder (one target per disk)")
           ->required();
       return [a] { return run_convert(*a); };
     }});

}  // namespace
}  // namespace vdkit::cli
