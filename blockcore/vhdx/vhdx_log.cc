// The VHDX log: the scan for the active sequence (every entry checked before it counts) and its replay into a
// copy-on-write layer.
#include "blockcore/vhdx/vhdx_log.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/crc32c.h"
#include "blockcore/base/ondisk_text.h"
#include "blockcore/layers/overlay.h"

namespace vdkit::vhdx {

namespace {

constexpr size_t kEntryHeaderBytes = 64;
constexpr size_t kDescriptorBytes = 32;
constexpr size_t kDataBytesInSector = 4084;  // a data sector's payload: the rest is in its descriptor

// The log's sectors, indexed from any position with wrap-around (an entry may run past the end of the buffer).
class LogRing {
 public:
  explicit LogRing(std::span<const uint8_t> bytes) : bytes_(bytes), sectors_(bytes.size() / kLogSectorBytes) {}
  uint64_t sectors() const { return sectors_; }
  const uint8_t* sector(uint64_t first, uint64_t i) const {
    return bytes_.data() + ((first + i) % sectors_) * kLogSectorBytes;
  }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t sectors_;
};

struct Entry {
  LogEntryInfo info;
  uint64_t first_sector = 0;  // in the ring
  uint64_t sectors = 0;
  uint64_t tail_sector = 0;
  uint64_t descriptor_sectors = 0;
};

struct ScanContext {
  const LogRing& ring;
  const std::string& where;
  const uint8_t* guid;
  uint64_t file_size;
  uint64_t log_offset, log_length;
  uint64_t checksummed = 0;
  std::string first_problem;  // the first reason an entry with a "loge" signature was not valid
};

// The descriptor d (0-based) of an entry starting at sector `first`: they follow the 64-byte header and never
// straddle a sector (4096 = 64 + 126 * 32, then 128 to a sector).
const uint8_t* descriptor(const LogRing& ring, uint64_t first, uint64_t d) {
  const uint64_t at = kEntryHeaderBytes + d * kDescriptorBytes;
  return ring.sector(first, at / kLogSectorBytes) + at % kLogSectorBytes;
}

// Checks the entry at sector `first`. nullopt (with the reason in ctx.first_problem when it claims to be an
// entry) when any check fails; an error only when the scan budget runs out.
Result<std::optional<Entry>> check_entry(ScanContext& ctx, uint64_t first) {
  const LogRing& ring = ctx.ring;
  const uint8_t* h = ring.sector(first, 0);
  if (std::memcmp(h, "loge", 4) != 0) return std::optional<Entry>();
  Entry e;
  e.first_sector = first;
  e.info.log_position = first * kLogSectorBytes;
  e.info.length = load_le32(h + 8);
  const uint32_t tail = load_le32(h + 12);
  e.info.sequence = load_le64(h + 16);
  e.info.descriptors = load_le32(h + 24);
  e.info.flushed_file_offset = load_le64(h + 48);
  e.info.last_file_offset = load_le64(h + 56);
  auto bad = [&](const std::string& why) -> Result<std::optional<Entry>> {
    if (ctx.first_problem.empty())
      ctx.first_problem = "the entry at log offset " + hex(e.info.log_position) + ": " + why;
    return std::optional<Entry>();
  };
  if (std::memcmp(h + 32, ctx.guid, 16) != 0)
    return bad("LogGuid " + guid_string(h + 32) + " is not the header's (a stale entry)");
  if (e.info.length == 0 || e.info.length % kLogSectorBytes || e.info.length > ctx.log_length)
    return bad("EntryLength " + std::to_string(e.info.length) + " is not a whole number of 4 KiB sectors within the log");
  if (tail % kLogSectorBytes || tail >= ctx.log_length)
    return bad("Tail " + std::to_string(tail) + " is not a 4 KiB-aligned offset inside the log");
  if (e.info.sequence == 0) return bad("SequenceNumber is 0");
  if (e.info.last_file_offset > kMaxLogFileBytes)
    return bad("LastFileOffset " + std::to_string(e.info.last_file_offset) + " is over the limit of " +
               std::to_string(kMaxLogFileBytes));
  e.sectors = e.info.length / kLogSectorBytes;
  e.tail_sector = tail / kLogSectorBytes;
  e.descriptor_sectors = div_round_up(kEntryHeaderBytes + uint64_t{e.info.descriptors} * kDescriptorBytes,
                                      kLogSectorBytes);
  if (e.descriptor_sectors > e.sectors)
    return bad("DescriptorCount " + std::to_string(e.info.descriptors) + " does not fit in EntryLength");

  // Descriptors and their data sectors; each write must stay inside what the file will be and off the headers
  // and the log itself.
  const uint64_t file_end = std::max(ctx.file_size, e.info.last_file_offset);
  uint64_t data_sectors = 0;
  for (uint64_t d = 0; d < e.info.descriptors; ++d) {
    const uint8_t* p = descriptor(ring, first, d);
    const std::string name = "descriptor " + std::to_string(d);
    const bool is_zero = std::memcmp(p, "zero", 4) == 0;
    if (!is_zero && std::memcmp(p, "desc", 4) != 0) return bad(name + " is neither \"desc\" nor \"zero\"");
    if (load_le64(p + 24) != e.info.sequence) return bad(name + " carries another SequenceNumber");
    const uint64_t off = load_le64(p + 16);
    const uint64_t len = is_zero ? load_le64(p + 8) : kLogSectorBytes;
    if (off % kLogSectorBytes || len % kLogSectorBytes)
      return bad(name + " at FileOffset " + hex(off) + " is not whole 4 KiB sectors");
    if (!range_within(off, len, file_end))
      return bad(name + " writes " + std::to_string(len) + " bytes at " + hex(off) + ", past the file's end (" +
                 std::to_string(file_end) + " bytes)");
    if (len && (off < kLogProtectedBytes || (off < ctx.log_offset + ctx.log_length && ctx.log_offset < off + len)))
      return bad(name + " writes at " + hex(off) + " into the headers or the log itself");
    if (is_zero) continue;
    const uint64_t s = e.descriptor_sectors + data_sectors++;
    if (s >= e.sectors) return bad("more data descriptors than data sectors in EntryLength");
    const uint8_t* ds = ring.sector(first, s);
    if (std::memcmp(ds, "data", 4) != 0) return bad("data sector " + std::to_string(s) + " has no \"data\" signature");
    if ((uint64_t{load_le32(ds + 4)} << 32 | load_le32(ds + 4092)) != e.info.sequence)
      return bad("data sector " + std::to_string(s) + " carries another SequenceNumber");
  }

  // The checksum, last: it is the costly check. Sectors never straddle the ring's end, so it runs sector by sector.
  if (ctx.checksummed + e.info.length > kMaxLogScanBytes)
    return Status::Unsupported("'" + ctx.where + "': the log scan would checksum more than " +
                               std::to_string(kMaxLogScanBytes) + " bytes (entries at every sector that fail their "
                               "CRC-32C); vdkit stops rather than spend that time");
  ctx.checksummed += e.info.length;
  const uint8_t zeros[4] = {};
  uint32_t crc = crc32c(h, 4);
  crc = crc32c(zeros, 4, crc);
  crc = crc32c(h + 8, kLogSectorBytes - 8, crc);
  for (uint64_t s = 1; s < e.sectors; ++s) crc = crc32c(ring.sector(first, s), kLogSectorBytes, crc);
  if (crc != load_le32(h + 4)) return bad("its CRC-32C does not match (a torn or stale entry)");
  return std::optional<Entry>(e);
}

// The file's bytes, read-only, and zeros from its end to `size` (replay may grow the file to LastFileOffset).
class FileBytes final : public BlockDevice {
 public:
  FileBytes(std::shared_ptr<File> file, uint64_t file_size, uint64_t size)
      : file_(std::move(file)), file_size_(file_size), size_(size) {
    info_.filename = file_->path();
    info_.format = "raw";
    info_.virtual_size = size_;
  }
  uint64_t size() const override { return size_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    const uint64_t n = offset < file_size_ ? std::min<uint64_t>(buf.size(), file_size_ - offset) : 0;
    if (n) VDKIT_RETURN_IF_ERROR(file_->ReadExact(offset, buf.data(), n));
    std::memset(buf.data() + n, 0, buf.size() - n);
    return Status::Ok();
  }
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    append_extent(out, {offset, length, ExtentType::kData});
    return Status::Ok();
  }
  const ImageInfo& info() const override { return info_; }

 private:
  std::shared_ptr<File> file_;
  uint64_t file_size_, size_;
  ImageInfo info_;
};

}  // namespace

Result<LogPlan> plan_log_replay(std::span<const uint8_t> log, const uint8_t log_guid[16], uint64_t file_size,
                                uint64_t log_offset, const std::string& where) {
  if (log.empty() || log.size() % kLogSectorBytes)
    return Status::Corrupt("'" + where + "': the log region is " + std::to_string(log.size()) +
                           " bytes, not a whole number of 4 KiB sectors");
  const LogRing ring(log);
  ScanContext ctx{ring, where, log_guid, file_size, log_offset, log.size(), 0, {}};
  const uint64_t n = ring.sectors();
  std::vector<Entry> best;
  // Every run of entries is followed from where it starts; a run is skipped whole once seen, so each sector is
  // looked at as the start of an entry at most twice (once more for the part of a run that wrapped to sector 0).
  for (uint64_t pos = 0; pos < n;) {
    VDKIT_ASSIGN_OR_RETURN(std::optional<Entry> first, check_entry(ctx, pos));
    if (!first) {
      ++pos;
      continue;
    }
    std::vector<Entry> run{*first};
    uint64_t covered = first->sectors;
    while (covered < n) {
      VDKIT_ASSIGN_OR_RETURN(std::optional<Entry> next, check_entry(ctx, (pos + covered) % n));
      if (!next || next->info.sequence != run.back().info.sequence + 1 || covered + next->sectors > n) break;
      covered += next->sectors;
      run.push_back(*next);
    }
    // Usable only when the head's Tail names an entry of the run; the sequence starts there.
    const Entry& head = run.back();
    auto tail = std::find_if(run.begin(), run.end(), [&](const Entry& x) { return x.first_sector == head.tail_sector; });
    if (tail == run.end()) {
      if (ctx.first_problem.empty())
        ctx.first_problem = "the entry with sequence number " + std::to_string(head.info.sequence) +
                            " names a tail at log offset " + hex(head.tail_sector * kLogSectorBytes) +
                            " that is not an entry of its sequence";
    } else if (best.empty() || head.info.sequence > best.back().info.sequence) {
      best.assign(tail, run.end());
    }
    pos += covered;
  }
  LogPlan plan;
  plan.view_size = file_size;
  if (best.empty()) {
    // Nothing was committed under this LogGuid (a writer sets it before its first entry is stable, and changes
    // the file in place only after): the file is consistent as it is.
    plan.no_sequence_reason = ctx.first_problem.empty() ? "the log holds no entry" : ctx.first_problem;
    return plan;
  }
  const LogEntryInfo& head = best.back().info;
  if (file_size < head.flushed_file_offset)
    return Status::Corrupt("'" + where + "': the file is " + std::to_string(file_size) +
                           " bytes, shorter than the log's FlushedFileOffset " +
                           std::to_string(head.flushed_file_offset) + " (the file was truncated after the log was written)");
  for (const Entry& e : best) {
    plan.entries.push_back(e.info);
    plan.view_size = std::max(plan.view_size, e.info.last_file_offset);
    uint64_t data = 0;
    for (uint64_t d = 0; d < e.info.descriptors; ++d) {
      const uint8_t* p = descriptor(ring, e.first_sector, d);
      LogWrite w;
      w.file_offset = load_le64(p + 16);
      if (std::memcmp(p, "zero", 4) == 0) {
        w.length = load_le64(p + 8);
        plan.zero_bytes += w.length;
      } else {
        const uint8_t* ds = ring.sector(e.first_sector, e.descriptor_sectors + data++);
        w.length = kLogSectorBytes;
        w.data.resize(kLogSectorBytes);
        std::memcpy(w.data.data(), p + 8, 8);  // LeadingBytes
        std::memcpy(w.data.data() + 8, ds + 8, kDataBytesInSector);
        std::memcpy(w.data.data() + 8 + kDataBytesInSector, p + 4, 4);  // TrailingBytes
        ++plan.data_sectors;
      }
      if (w.length) plan.writes.push_back(std::move(w));
    }
  }
  return plan;
}

Status apply_log_replay(const LogPlan& plan, BlockDevice& target) {
  for (const LogWrite& w : plan.writes) {
    if (w.data.empty()) {
      VDKIT_RETURN_IF_ERROR(target.zero(w.file_offset, w.length));
    } else {
      VDKIT_RETURN_IF_ERROR(target.write(w.file_offset, w.data));
    }
  }
  return Status::Ok();
}

Result<BlockDevicePtr> replay_into_memory(std::shared_ptr<File> file, uint64_t file_size, const LogPlan& plan) {
  BlockDevicePtr overlay =
      make_memory_overlay(std::make_shared<FileBytes>(std::move(file), file_size, std::max(file_size, plan.view_size)));
  VDKIT_RETURN_IF_ERROR(apply_log_replay(plan, *overlay));
  return overlay;
}

std::string describe_log_replay(const LogPlan& plan) {
  const size_t n = plan.entries.size();
  std::string s = std::to_string(n) + (n == 1 ? " entry" : " entries");
  if (n)
    s += " (sequence " + std::to_string(plan.entries.front().sequence) +
         (n > 1 ? " to " + std::to_string(plan.entries.back().sequence) : std::string()) + ")";
  return s + ", " + std::to_string(plan.data_sectors) + " sectors written, " + std::to_string(plan.zero_bytes) +
         " bytes zeroed";
}

}  // namespace vdkit::vhdx
