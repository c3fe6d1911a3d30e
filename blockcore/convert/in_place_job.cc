// A conversion onto a block device or NBD export: size checks, the resume record, and a failure that says what it left.
#include <sys/stat.h>
#include <unistd.h>

#include "blockcore/base/units.h"
#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/output_target.h"
#include "blockcore/convert/resume_record.h"
#include "blockcore/convert/target_sinks.h"
#include "blockcore/sources/nbd_source.h"
#include "blockcore/sources/stream_source.h"

namespace vdkit {

namespace {

std::string sized(uint64_t bytes) { return human_size(bytes) + " (" + std::to_string(bytes) + " bytes)"; }

const char* format_name(const ConvertOptions& o) { return o.format == TargetFormat::kQcow2 ? "qcow2" : "raw"; }

// The record as this run would write it at `flushed`, checksums included.
class RecordKeeper {
 public:
  RecordKeeper(BlockDevice* dev, const std::string& source, const std::string& target, const OutputTarget& t,
               const ConvertOptions& o)
      : dev_(dev), path_(o.state_file) {
    r_.source = source;
    r_.target = target;
    r_.target_format = format_name(o);
    r_.cluster_size = o.format == TargetFormat::kQcow2 ? o.cluster_size : 0;
    r_.compression = o.compress ? (o.codec == Codec::kZstd ? "zstd" : "zlib") : "";
    r_.fixup = static_cast<bool>(o.prepare_source);
    r_.target_size = t.size();
    if (dev_) {
      r_.source_size = dev_->size();
      r_.header_bytes = std::min(kResumeHeaderBytes, r_.source_size);
    }
  }
  // Records are kept for device sources only (a stream cannot be read again
  // to check it), and not for --fixup runs (see check_resume).
  bool enabled() const { return dev_ && !path_.empty() && !r_.fixup; }
  const char* why_none() const {
    return !dev_ ? "a stream source" : r_.fixup ? "a --fixup run cannot be resumed" : "no --state";
  }
  const std::string& path() const { return path_; }

  Status fill_checksums(ResumeRecord& r, uint64_t flushed) const {
    VDKIT_ASSIGN_OR_RETURN(r.header_crc32, device_crc32(*dev_, 0, r.header_bytes));
    r.flushed = flushed;
    r.last_chunk_bytes = std::min(flushed, kConvertChunk);
    r.last_chunk_offset = flushed - r.last_chunk_bytes;
    VDKIT_ASSIGN_OR_RETURN(r.last_chunk_crc32, device_crc32(*dev_, r.last_chunk_offset, r.last_chunk_bytes));
    return Status::Ok();
  }

  Status save(uint64_t flushed) {
    flushed_ = flushed;
    if (!enabled()) return Status::Ok();
    ResumeRecord r = r_;
    VDKIT_RETURN_IF_ERROR(fill_checksums(r, flushed));
    return write_resume_record(path_, r);
  }
  uint64_t flushed() const { return flushed_; }

  // The offset a resumed run starts from, after checking the record matches this run and the source.
  Result<uint64_t> check_resume() const {
    if (!dev_) return Status::Invalid("a source on standard input cannot be resumed; convert it again from the start");
    if (path_.empty()) return Status::Invalid("--resume needs the resume record (--state FILE)");
    // The fixups stamp times and may place blocks differently on each run: the
    // part written before the stop and the rest would come from two different
    // guests.
    if (r_.fixup)
      return Status::Invalid(
          "--resume cannot continue a --fixup run: each run of the fixups writes the guest a "
          "little differently (times), so the two halves would not fit; run it again without "
          "--resume");
    auto rec = read_resume_record(path_);
    if (!rec.ok()) return rec.status().Context("--resume: no record of an interrupted run onto '" + r_.target + "'");
    const ResumeRecord& old = *rec;
    auto differs = [&](const std::string& what, const std::string& was, const std::string& now) {
      return Status::Invalid("--resume: the record '" + path_ + "' was written for " + what + " " + was +
                             ", and this run has " + now + "; run without --resume to start over");
    };
    if (old.target != r_.target) return differs("the target", old.target, r_.target);
    if (old.target_format != r_.target_format || old.cluster_size != r_.cluster_size ||
        old.compression != r_.compression || old.fixup != r_.fixup)
      return differs(
          "target format", old.target_format + (old.fixup ? " with --fixup" : ""),
          r_.target_format + (r_.fixup ? " with --fixup" : "") + " (or another cluster size or compression)");
    if (old.target_size != r_.target_size)
      return differs("a target of", std::to_string(old.target_size) + " bytes", std::to_string(r_.target_size));
    if (old.source_size != r_.source_size)
      return Status::Invalid("--resume: the source changed since the interrupted run: its size was " +
                             std::to_string(old.source_size) + " bytes and is now " + std::to_string(r_.source_size));
    if (old.flushed % kConvertChunk != 0 && old.flushed != old.source_size)
      return Status::Invalid("--resume: the record '" + path_ + "' does not stop on a chunk boundary");
    ResumeRecord now = r_;
    VDKIT_RETURN_IF_ERROR(fill_checksums(now, old.flushed));
    if (now.header_crc32 != old.header_crc32)
      return Status::Invalid("--resume: the source changed since the interrupted run: its first " +
                             std::to_string(old.header_bytes) + " bytes have another checksum");
    if (now.last_chunk_crc32 != old.last_chunk_crc32)
      return Status::Invalid("--resume: the source changed since the interrupted run: the last chunk written (" +
                             std::to_string(old.last_chunk_bytes) + " bytes at offset " +
                             std::to_string(old.last_chunk_offset) + ") has another checksum");
    return old.flushed;
  }

 private:
  BlockDevice* dev_;
  std::string path_;
  ResumeRecord r_;
  uint64_t flushed_ = 0;
};

}  // namespace

bool is_in_place_target(const std::string& target) { return is_nbd_uri(target) || is_block_device_path(target); }

Result<ConvertStats> convert_in_place(BlockDevice* dev, StreamSource* stream, const std::string& source,
                                      const std::string& target, const ConvertOptions& opts) {
  const bool nbd = is_nbd_uri(target);
  const std::string kind = nbd ? "the NBD export" : "the block device";
  if (stream && opts.format == TargetFormat::kQcow2)
    return Status::Invalid("a qcow2 written onto " + kind +
                           " is laid out before its data, which needs two passes over the source, and a source on "
                           "standard input can be read only once; give the source as a file, or use -O raw");
  std::unique_ptr<OutputTarget> out;
  if (nbd) {
    VDKIT_ASSIGN_OR_RETURN(out, open_nbd_target(target, opts.nbd_connections));
  } else {
    if (!opts.overwrite)
      return Status::Error(EEXIST, "'" + target +
                                       "' is a block device: converting onto it replaces what it holds; pass "
                                       "--overwrite to do so");
    struct stat a, b;
    if (!is_nbd_uri(source) && source != "-" && ::stat(source.c_str(), &a) == 0 && ::stat(target.c_str(), &b) == 0 &&
        S_ISBLK(a.st_mode) && a.st_rdev == b.st_rdev)
      return Status::Invalid("the target '" + target + "' is the source; vdkit never writes its source");
    VDKIT_ASSIGN_OR_RETURN(out, open_block_device_target(target, opts.target_io));
  }
  const uint64_t size = dev ? dev->size() : stream->size();
  // A qcow2 needs room for its clusters, not for the virtual size: its end is checked once laid out.
  if (opts.format == TargetFormat::kRaw && size > out->size())
    return Status::Error(ENOSPC, kind + " '" + target + "' holds " + sized(out->size()) +
                                     ", less than the source's virtual size of " + sized(size) +
                                     "; nothing was written");

  RecordKeeper keeper(dev, source, target, *out, opts);
  uint64_t start = 0;
  if (opts.resume) {
    VDKIT_ASSIGN_OR_RETURN(start, keeper.check_resume());
  }
  VDKIT_RETURN_IF_ERROR(keeper.save(start));

  InPlaceOptions place;
  place.start = start;
  place.checkpoint_seconds = opts.checkpoint_seconds;
  place.on_flushed = [&keeper](uint64_t flushed) { return keeper.save(flushed); };
  auto made = make_in_place_sink(*out, opts, place);
  if (!made.ok()) return made.status();
  ConvertSink& sink = **made;
  ConvertOptions run = opts;
  run.start_offset = start;
  Result<ConvertStats> stats = stream ? convert_stream(*stream, sink, run) : convert(*dev, sink, run);
  if (stats.ok()) {
    if (keeper.enabled()) ::unlink(keeper.path().c_str());
    return stats;
  }

  // Failed or interrupted: make what was written durable and say where it stopped.
  Status st = stats.status();
  if (sink.bytes_written() == 0 && start == 0) {
    if (keeper.enabled()) ::unlink(keeper.path().c_str());
    if (st.message().find("nothing was written") != std::string::npos) return st;
    return Status::Error(st.code(), st.message() + "; nothing was written to '" + target + "'");
  }
  auto reached = sink.flush_reached();
  if (reached.ok()) (void)keeper.save(*reached);
  const uint64_t at = keeper.flushed();
  const uint64_t total = size ? size : at;
  std::string msg = st.message() + "; " + kind + " '" + target + "' was left partly written: the conversion is " +
                    "complete and flushed up to offset " + std::to_string(at) + " of the source's " +
                    std::to_string(total) + " bytes (" +
                    std::to_string(total ? static_cast<int>(100.0 * static_cast<double>(at) / total) : 0) + "%)";
  if (opts.format == TargetFormat::kQcow2) msg += "; the qcow2 header is written last, so it is not an image yet";
  if (keeper.enabled())
    msg += "; run the same command with --resume to continue from there (resume record: " + keeper.path() + ")";
  else
    msg += "; no resume record was kept (" + std::string(keeper.why_none()) + "), so run it again from the start";
  return Status::Error(st.code(), msg);
}

}  // namespace vdkit
