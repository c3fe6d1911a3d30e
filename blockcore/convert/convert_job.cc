// A conversion from names to a finished target: opens the source, makes the sink, writes beside the target and renames.
#include "blockcore/convert/convert_job.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcore/convert/qcow2_writer.h"
#include "blockcore/convert/temp_target.h"
#include "blockcore/convert/raw_writer.h"
#include "blockcore/layers/device_stack.h"
#include "blockcore/sources/nbd_source.h"
#include "blockcore/sources/stream_source.h"

namespace vdkit {

namespace {

// Convert reads every grain once, in order: a big inflated-grain cache only costs memory.
constexpr size_t kConvertCacheBytes = 8u << 20;

}  // namespace

Result<std::unique_ptr<ConvertSink>> make_sink(int fd, const std::string& name, bool seekable,
                                               const ConvertOptions& opts) {
  if (opts.format == TargetFormat::kRaw) {
    if (opts.compress) return Status::Invalid("compression (-c) needs a qcow2 target (-O qcow2)");
    return make_raw_sink(fd, name, seekable, opts.sync, opts.target_io);
  }
  Qcow2WriterOptions q;
  q.cluster_size = opts.cluster_size;
  q.compress = opts.compress;
  q.codec = opts.codec;
  q.sync = opts.sync;
  q.target_io = opts.target_io;
  return make_qcow2_sink(fd, name, seekable, q);
}

Result<ConvertStats> convert_path(const std::string& source, const std::string& target, const ConvertOptions& opts) {
  // Open the source first: nothing is created for a source that cannot be read.
  std::unique_ptr<StreamSource> stream;
  BlockDevicePtr dev;
  if (source == "-") {
    VDKIT_ASSIGN_OR_RETURN(stream, open_stream_source(STDIN_FILENO, "standard input", opts.cancel));
  } else if (is_nbd_uri(source)) {
    VDKIT_ASSIGN_OR_RETURN(dev, open_nbd_source(source));
  } else {
    OpenOptions oo = opts.open;
    oo.cache_bytes = std::min<size_t>(oo.cache_bytes, kConvertCacheBytes);
    auto d = open_image(source, oo);
    if (!d.ok()) return d.status();
    dev = std::move(d).value();
  }
  const std::vector<std::string> warnings = dev ? chain_warnings(dev->info()) : std::vector<std::string>();
  if (!opts.lv.empty()) {
    if (stream) return Status::Invalid("an LV cannot be read from a stream on standard input");
    std::vector<GuestDisk> disks{{source, std::shared_ptr<BlockDevice>(std::move(dev))}};
    for (const auto& p : opts.lv_disks) {
      auto d = open_image(p, opts.open);
      if (!d.ok()) return d.status().Context("'" + p + "'");
      disks.push_back({p, std::shared_ptr<BlockDevice>(std::move(*d))});
    }
    auto lv = open_lv_on(disks, opts.lv);
    if (!lv.ok()) return lv.status().Context("--lv " + opts.lv);
    dev = std::move(*lv);
  }
  std::shared_ptr<BlockDevice> prepared;
  if (opts.prepare_source) {
    if (stream)
      return Status::Invalid("a stream on standard input cannot be prepared (--fixup needs a file or NBD source)");
    VDKIT_ASSIGN_OR_RETURN(prepared, opts.prepare_source(std::shared_ptr<BlockDevice>(std::move(dev))));
  }

  auto run = [&](ConvertSink& sink) -> Result<ConvertStats> {
    Result<ConvertStats> s = stream ? convert_stream(*stream, sink, opts) : convert(prepared ? *prepared : *dev, sink, opts);
    if (s.ok()) s->warnings = warnings;
    return s;
  };

  if (target != "-" && is_in_place_target(target)) {
    auto s = convert_in_place(prepared ? prepared.get() : dev.get(), stream.get(), source, target, opts);
    if (s.ok()) s->warnings = warnings;
    return s;
  }

  if (target == "-") {
    struct stat st;
    if (::fstat(STDOUT_FILENO, &st) != 0) return Status::FromErrno(errno, "standard output");
    bool seekable = S_ISREG(st.st_mode) && ::lseek(STDOUT_FILENO, 0, SEEK_CUR) == 0;
    if (isatty(STDOUT_FILENO)) return Status::Invalid("standard output is a terminal; redirect it to a file or a pipe");
    if (seekable && st.st_size != 0)
      return Status::Invalid("standard output is a file that is not empty; vdkit writes only to empty files");
    VDKIT_ASSIGN_OR_RETURN(auto sink, make_sink(STDOUT_FILENO, "standard output", seekable, opts));
    return run(*sink);
  }

  if (source != "-" && !is_nbd_uri(source)) {
    struct stat a, b;
    if (::stat(source.c_str(), &a) == 0 && ::stat(target.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      return Status::Invalid("the target '" + target + "' is the source; vdkit never writes its source");
  }
  TempTarget tmp;
  VDKIT_RETURN_IF_ERROR(tmp.create(target, opts.overwrite));
  Result<ConvertStats> stats = Status::IoError("not run");
  {
    auto sink = make_sink(tmp.fd(), tmp.tmp(), true, opts);
    if (!sink.ok()) return sink.status();
    stats = run(**sink);
    if (!stats.ok()) return stats.status();
  }
  struct stat st;
  if (::fstat(tmp.fd(), &st) == 0) stats->allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  if (opts.cancel && opts.cancel->load()) return Status::Error(ECANCELED, "interrupted");
  VDKIT_RETURN_IF_ERROR(tmp.commit());
  return stats;
}

}  // namespace vdkit
