// `vdkit convert`: streaming conversion of a file, stdin stream or NBD export to sparse raw or qcow2.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/convert/convert_folder.h"
#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/resume_record.h"
#include "blockcore/env/env_settings.h"
#include "cli/command.h"
#include "cli/fixup_flags.h"
#include "cli/guest_disks.h"
#include "fixups/run.h"
#include "guestfs/sparse_map.h"

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
  int compression_level = 0;  // 0: the codec's default
  bool progress = false;
  bool target_is_zero = false;
  bool overwrite = false;
  bool output_json = false;
  std::string lv;                     // --lv VG/LV
  std::vector<std::string> lv_disks;  // --disk PATH...
  bool no_sync = false;
  uint64_t cluster_size = 64u << 10;
  unsigned threads = 0;
  // Block device and NBD targets (issue 17): the resume record and its use.
  std::string state;
  bool resume = false;
  double checkpoint_seconds = 5.0;
  unsigned connections = 4;
  std::string source, target;
  std::vector<std::string> sources;  // SOURCE...: the guest's disks; with more than one, TARGET is a folder
  // --fixup (issue 6): the KVM fixups applied in an overlay on the way.
  bool fixup = false;
  FixupFlags fixup_flags;
  // --sparsify (issue 16): what the guest's file systems do not use is left out.
  bool sparsify = false;
};

nlohmann::json sparsify_json(const guestfs::SparseMap& m) {
  nlohmann::json j;
  j["bytes-skipped"] = m.unused_bytes();
  j["bytes-skipped-outside-partitions"] = m.outside_partitions_bytes;
  j["volumes"] = nlohmann::json::array();
  for (const auto& v : m.volumes) {
    nlohmann::json e;
    e["partition"] = v.partition;
    e["offset"] = v.offset;
    e["length"] = v.length;
    e["type"] = v.type;
    e["mapped"] = v.mapped;
    e["bytes-skipped"] = v.unused_bytes;
    if (!v.mapped) e["copied-whole"] = v.reason;
    if (!v.vg.empty()) {
      // An LVM PV: the extents no LV uses, and each LV's part on this PV.
      e["vg"] = v.vg;
      e["bytes-skipped-free-extents"] = v.free_extent_bytes;
      e["lvs"] = nlohmann::json::array();
      for (const auto& lv : v.lvs) {
        nlohmann::json l;
        l["lv"] = lv.name;
        l["type"] = lv.type;
        l["length"] = lv.length;
        l["mapped"] = lv.mapped;
        l["bytes-skipped"] = lv.unused_bytes;
        if (!lv.mapped) l["copied-whole"] = lv.reason;
        e["lvs"].push_back(l);
      }
    }
    j["volumes"].push_back(e);
  }
  return j;
}

// SOURCE... FOLDER: one target per disk of the guest, named by the rule for several targets, fixed together.
int run_several(const ConvertArgs& a, ConvertOptions o, fixups::FixupResult& fix) {
  if (!a.lv.empty()) {
    std::fprintf(stderr, "vdkit convert: --lv converts one LV; give one SOURCE (and --disk for the others)\n");
    return kExitUsage;
  }
  std::optional<fixups::FixupOptions> fo;
  if (a.fixup) fo = *a.fixup_flags.options();
  o.prepare_source = nullptr;
  std::vector<ConvertStats> stats;
  std::vector<guestfs::SparseMap> maps;
  auto targets = convert_guest_disks(a.sources, a.target, o, a.out_format, fo ? &*fo : nullptr, &fix, &stats,
                                     a.sparsify ? &maps : nullptr);
  if (!targets.ok()) {
    std::fprintf(stderr, "vdkit convert: %s (no target was written)\n", targets.status().message().c_str());
    return kExitFailure;
  }
  for (const ConvertStats& s : stats) warn("convert", s.warnings);
  if (a.output_json) {
    nlohmann::json j;
    j["targets"] = nlohmann::json::array();
    for (size_t i = 0; i < targets->size(); ++i) {
      nlohmann::json t = {{"source", a.sources[i]}, {"target", (*targets)[i]},
                          {"virtual-size", stats[i].virtual_size}, {"bytes-written", stats[i].bytes_written}};
      if (a.sparsify) t["sparsify"] = sparsify_json(maps.at(i));
      j["targets"].push_back(t);
    }
    j["target-format"] = a.out_format;
    if (a.fixup) j["fixup"] = fixups::to_json(fix.plan);
    std::cout << j.dump(4) << "\n";
    return kExitOk;
  }
  if (a.fixup) std::fputs(fixups::to_human(fix.plan).c_str(), stdout);
  for (size_t i = 0; i < targets->size(); ++i) {
    std::printf("%s -> %s\n", a.sources[i].c_str(), (*targets)[i].c_str());
    if (a.sparsify)
      std::fputs(("sparsify: " + human_size(maps.at(i).unused_bytes()) + " left out\n" +
                  guestfs::sparse_summary(maps.at(i))).c_str(), stdout);
  }
  return kExitOk;
}

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
  o.level = a.compression_level;
  o.cluster_size = a.cluster_size;
  o.target_is_zero = a.target_is_zero;
  o.overwrite = a.overwrite;
  o.sync = !a.no_sync;
  o.threads = a.threads;
  o.open = a.image.open_options();
  o.cancel = &g_cancel;
  const bool in_place = a.target != "-" && is_in_place_target(a.target);
  if (in_place) {
    o.state_file = !a.state.empty() ? a.state : default_resume_record_path(default_state_dir(), a.target);
    o.resume = a.resume;
    o.checkpoint_seconds = a.checkpoint_seconds;
    o.nbd_connections = a.connections;
  } else if (a.resume) {
    std::fprintf(stderr, "vdkit convert: --resume needs a block device or NBD target; a file target is always "
                         "written whole under a temporary name\n");
    return kExitUsage;
  }
  o.lv = a.lv;
  o.lv_disks = a.lv_disks;
  if (!a.lv_disks.empty() && a.lv.empty()) {
    std::fprintf(stderr, "vdkit convert: --disk names the other disks of an LV's volume group; it needs --lv\n");
    return kExitUsage;
  }
  if (!a.lv.empty() && a.fixup) {
    std::fprintf(stderr, "vdkit convert: --fixup works on whole disks (the guest's LVs are found by itself); "
                         "drop --lv\n");
    return kExitUsage;
  }
  if (a.compress && o.format != TargetFormat::kQcow2) {
    std::fprintf(stderr, "vdkit convert: -c (compression) needs -O qcow2\n");
    return kExitUsage;
  }
  if (a.compression_level != 0 && !a.compress) {
    std::fprintf(stderr, "vdkit convert: --compression-level needs -c\n");
    return kExitUsage;
  }
  if (a.compression_level > (o.codec == Codec::kZstd ? 19 : 12)) {
    std::fprintf(stderr, "vdkit convert: --compression-level for %s is 1 to %d\n", a.compression.c_str(),
                 o.codec == Codec::kZstd ? 19 : 12);
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
  if (a.sparsify && a.source == "-") {
    std::fprintf(stderr, "vdkit convert: --sparsify needs a file or NBD source (it reads the guest's metadata first)\n");
    return kExitUsage;
  }
  fixups::FixupOptions fo;
  if (a.fixup) {
    auto parsed = a.fixup_flags.options();
    if (!parsed.ok()) {
      std::fprintf(stderr, "vdkit convert: %s\n", parsed.status().message().c_str());
      return kExitUsage;
    }
    fo = *parsed;
  }
  guestfs::SparseMap smap;
  if (a.fixup || a.sparsify) {
    // The fixups first, so the map is the fixed guest's: a file they rewrote lives in blocks the map then counts.
    o.prepare_source = [&a, fo, &fix, &smap](std::shared_ptr<BlockDevice> src) -> Result<std::shared_ptr<BlockDevice>> {
      std::shared_ptr<BlockDevice> dev = std::move(src);
      if (a.fixup) {
        VDKIT_ASSIGN_OR_RETURN(dev, fixups::make_fixed_overlay(std::move(dev), fo, &fix));
      }
      if (a.sparsify) {
        VDKIT_ASSIGN_OR_RETURN(dev, guestfs::make_sparsified_device(std::move(dev), &smap));
      }
      return dev;
    };
  }
  install_handlers();
  if (a.sources.size() > 1) return run_several(a, o, fix);
  if (a.target != "-" && is_folder_target(a.target)) return run_convert_to_folder(a, o);
  auto stats = convert_path(a.source, a.target, o);
  if (!stats.ok()) {
    if (a.progress) std::fprintf(stderr, "\n");
    if (stats.status().code() == ECANCELED && g_signal.load()) {
      // An in-place target's message says what was left; drop the pipeline's own "interrupted".
      std::string left = stats.status().message();
      if (left.rfind("interrupted; ", 0) == 0) left.erase(0, 13);
      std::fprintf(stderr, "vdkit convert: interrupted by signal %d (%s); %s\n", g_signal.load(),
                   strsignal(g_signal.load()),
                   in_place ? left.c_str()
                   : a.target == "-" ? "standard output holds an incomplete image"
                                     : "no target was written and the temporary file was removed");
      return kExitFailure;
    }
    std::fprintf(stderr, "vdkit convert: %s%s\n", stats.status().message().c_str(),
                 a.target == "-" || in_place ? "" : " (no target was written)");
    return kExitFailure;
  }
  if (a.progress) bar.update(stats->virtual_size, stats->virtual_size, true);
  warn("convert", stats->warnings);
  if (a.fixup && !a.output_json) std::fputs(fixups::to_human(fix.plan).c_str(), a.target == "-" ? stderr : stdout);
  if (a.sparsify && !a.output_json)
    std::fputs(("sparsify: " + human_size(smap.unused_bytes()) + " left out\n" + guestfs::sparse_summary(smap)).c_str(),
               a.target == "-" ? stderr : stdout);
  if (a.output_json) {
    const ConvertStats& s = *stats;
    nlohmann::json j;
    j["source"] = a.source;
    j["target"] = a.target;
    j["target-format"] = a.out_format;
    j["target-kind"] = a.target == "-"                          ? "stdout"
                       : !in_place                              ? "file"
                       : a.target.rfind("nbd", 0) == 0          ? "nbd"
                                                                : "block-device";
    if (in_place) j["resumed"] = a.resume;
    if (a.compress) j["compression"] = a.compression;
    if (a.compress && a.compression_level) j["compression-level"] = a.compression_level;
    j["virtual-size"] = s.virtual_size;
    j["bytes-read"] = s.bytes_read;
    j["bytes-written"] = s.bytes_written;
    j["bytes-skipped-holes"] = s.bytes_holes;
    j["bytes-skipped-zeros"] = s.bytes_zeros;
    if (a.target != "-" && !in_place) j["allocated-bytes"] = s.allocated_bytes;
    j["seconds"] = s.seconds;
    j["throughput-bytes-per-second"] = s.seconds > 0 ? static_cast<uint64_t>(s.virtual_size / s.seconds) : 0;
    j["source-passes"] = s.two_passes ? 2 : 1;
    if (!s.warnings.empty()) j["warnings"] = s.warnings;
    if (a.fixup) j["fixup"] = fixups::to_json(fix.plan);
    if (a.sparsify) j["sparsify"] = sparsify_json(smap);
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
           "A guest on several disks: `vdkit convert [--fixup] DISK0 DISK1 ... FOLDER` writes one target per\n"
           "disk into FOLDER (made if missing), each named after its source with the target format as\n"
           "extension (web1-disk0.vmdk -> web1-disk0.qcow2). With --fixup the guest is inspected and fixed\n"
           "across all its disks at once (an LVM volume group spanning them, /boot on one and root on\n"
           "another; /dev/xvdb1 is mapped through the second disk). A failure removes every target written.\n"
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
           "(or each SOURCE, for a guest on several disks) becomes one target there, named after the source's file (web1.vmdk -> web1.raw) or, for disks\n"
           "with no file name of their own, NAME-diskN.raw. An XVA (`xe vm-export`, plain, gzip or zstd,\n"
           "a file or '-') is read once, front to back with no temporary file: NAME is the VM's name in\n"
           "ova.xml and N each disk's place in the VM's device order. Every chunk is checked against its\n"
           "SHA-1 or xxh64 before it is written; a mismatch stops the run, and the targets get their\n"
           "names only when all of them are complete, so a failed run leaves none. The targets' paths are\n"
           "printed one a line (with --output-json, a JSON summary with one entry per target).\n"
           "\n"
           "TARGET may also be written in place, with no file in between:\n"
           "  a block device (/dev/sdX, an LV, a loop device): needs --overwrite; refused when it is smaller\n"
           "    than the source's virtual size (both sizes are named) or in use (mounted, held by LVM/RAID,\n"
           "    or open exclusively: it is opened with O_EXCL). Data goes down with O_DIRECT where the\n"
           "    device takes it. Every range of zeros is first punched (fallocate PUNCH_HOLE|KEEP_SIZE,\n"
           "    which keeps thin storage thin and reads back as zeros), and zeroed with BLKZEROOUT where\n"
           "    the device refuses that; never discarded (BLKDISCARD leaves undefined contents).\n"
           "  an NBD export (nbd://host[:port]/export, nbd+unix:///export?socket=PATH): written through\n"
           "    libnbd over up to --connections connections when the server allows multi-conn (one\n"
           "    otherwise), ranges of zeros as zero requests (NBD_CMD_FLAG_FAST_ZERO where offered), a\n"
           "    flush at the end. The export must be at least the source's size.\n"
           "  Bytes past the source's size are left as they were. With --target-is-zero ranges of zeros\n"
           "  are skipped (say so only when the target reads as zeros already). With -O qcow2 the qcow2\n"
           "  file is laid out on the device or export: the source is read twice (once to lay out the\n"
           "  metadata), the image's end is checked against the target's size before anything is\n"
           "  written, and the header is written last, after everything else is flushed.\n"
           "  Such a target cannot be renamed into place, so it is flushed every --checkpoint-interval\n"
           "  seconds (and every GiB) and a small JSON resume record says how far it got (--state FILE;\n"
           "  by default STATE/resume/NAME-CRC.json, STATE being $XDG_STATE_HOME/vdkit, else\n"
           "  /var/lib/vdkit for root, else ~/.local/state/vdkit). A failed or interrupted run\n"
           "  (SIGINT, SIGTERM) flushes what it wrote and says that the target was left partly written and\n"
           "  up to which offset; --resume continues from the last flushed point after checking that the\n"
           "  source is unchanged (its size, and the CRC-32 of its first MiB and of the last chunk\n"
           "  written). The record is removed when the conversion completes. A stream on standard input\n"
           "  cannot be resumed, nor can a --fixup run (each run stamps the guest with other times).\n"
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
       sub.add_option("--compression-level", a->compression_level,
                      "Level for -c: zlib 1 (fastest) to 12 (smallest, slowest), default 4 (libdeflate's 4 is as small "
                      "as zlib's 6, qemu-img's default); zstd 1 to 19, default 3")
           ->check(CLI::Range(1, 19));
       sub.add_option("--cluster-size", a->cluster_size, "qcow2 cluster size in bytes (a power of two, 512 to 2 MiB)")
           ->default_val(65536);
       sub.add_flag("-p,--progress", a->progress,
                    "Show progress on standard error: percent, bytes, rate and time left");
       sub.add_flag("--target-is-zero", a->target_is_zero,
                    "The target reads as zeros already, so ranges of zeros are skipped (always true of the new\n"
                    "files vdkit creates; for a block device or NBD export only when it is known to be zeroed)");
       sub.add_flag("--overwrite", a->overwrite,
                    "Replace TARGET if it exists; needed to write onto a block device, whose contents are lost");
       sub.add_option("--state", a->state,
                      "Block device or NBD target: the resume record's file (default: under $XDG_STATE_HOME/vdkit,\n"
                      "/var/lib/vdkit for root, or ~/.local/state/vdkit)")
           ->type_name("FILE");
       sub.add_flag("--resume", a->resume,
                    "Block device or NBD target: continue an interrupted run from its resume record, after\n"
                    "checking the source is unchanged");
       sub.add_option("--checkpoint-interval", a->checkpoint_seconds,
                      "Block device or NBD target: flush and update the resume record every this many seconds\n"
                      "(0.1 to 86400; default 5)")
           ->default_val(5.0)
           ->type_name("SECONDS")
           ->check(CLI::Range(0.1, 86400.0).description(""));
       sub.add_option("--connections", a->connections,
                      "NBD target: connections to use when the server allows multi-conn (1 to 16; default 4)")
           ->default_val(4)
           ->type_name("N")
           ->check(CLI::Range(1u, 16u).description(""));
       sub.add_flag("--output-json", a->output_json,
                    "Print a JSON summary (bytes read, written, skipped as holes or zeros, seconds, "
                    "throughput) on standard output, or on standard error when TARGET is '-'");
       sub.add_flag("--no-sync", a->no_sync,
                    "Do not flush a file target to stable storage before renaming it (block device and NBD\n"
                    "targets are always flushed: their resume record counts on it)");
       sub.add_option("-j,--threads", a->threads, "Worker threads (default: cores + 2)");
       sub.add_flag("--fixup", a->fixup,
                    "Apply the Xen/VMware-to-KVM fixups of `vdkit fixup` in a memory overlay on the way (the\n"
                    "source is unchanged) and print their diffs and warnings at the end");
       a->fixup_flags.add_to(sub, "With --fixup: ");
       sub.add_flag("--sparsify", a->sparsify,
                    "Leave out what the guest does not use, read from its own metadata before the copy: the free\n"
                    "blocks of ext2/3/4 file systems (their block bitmaps; the journal and all metadata count as\n"
                    "used), of XFS and of Btrfs, swap space after the swap header (the header, with UUID and label,\n"
                    "is kept), the extents of an LVM2 PV that no LV uses and the free blocks of its linear and\n"
                    "striped LVs by the same rules (the PV label and metadata areas are kept; a VG spanning several\n"
                    "disks is read across all SOURCEs given; an LV with a PV on none of them, a snapshot's origin, a\n"
                    "thin, raid or mirror LV is copied whole), and the space outside every partition except the\n"
                    "boot-loader gap before the first partition, the MBR, the EBRs of logical partitions and both\n"
                    "GPTs. These bytes are never read from the source\n"
                    "and become holes in a raw target and unallocated clusters in a qcow2 target. A partition whose\n"
                    "content vdkit does not know, a file system that is not clean (a journal needing recovery,\n"
                    "errors recorded, not unmounted) and a swap area holding a hibernation image are copied whole,\n"
                    "and the summary says why. With --fixup the fixups are applied first and the map is taken from\n"
                    "the fixed guest. The bytes left out per file system and per LV are printed, and are in\n"
                    "--output-json's \"sparsify\" object (one per target with several SOURCEs)");
       sub.add_option("--lv", a->lv,
                      "Convert logical volume LV of LVM2 volume group VG (VG/LV) of SOURCE instead of the whole "
                      "disk; nothing is activated")
           ->type_name("VG/LV");
       sub.add_option("--disk", a->lv_disks,
                      "With --lv: another disk of the same guest that holds PVs of the VG (repeatable; read-only)")
           ->type_name("PATH");
       // One positional list, split here: CLI11 would let a SOURCE list swallow TARGET.
       sub.add_option("SOURCE... TARGET", a->sources,
                      "SOURCE: an image file, '-' for standard input, or an NBD URI; several image files for a "
                      "guest on several disks (in the order the guest names them). TARGET: a file, '-' for "
                      "standard output, a block device, an NBD URI, or a folder for several SOURCEs")
           ->expected(2, -1)
           ->required();
       return [a] {
         a->target = a->sources.back();
         a->sources.pop_back();
         a->source = a->sources[0];
         return run_convert(*a);
       };
     }});

}  // namespace
}  // namespace vdkit::cli
