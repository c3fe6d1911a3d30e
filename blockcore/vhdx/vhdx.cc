// The VHDX driver (read-only): fixed, dynamic and differencing disks; payload blocks through the BAT, partially
// present blocks through their sector bitmaps, the rest from the parent or as zeros.
#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/grain_cache.h"
#include "blockcore/base/ondisk_text.h"
#include "blockcore/sources/image.h"
#include "blockcore/sources/mapped_runs.h"
#include "blockcore/vhdx/vhdx_format.h"
#include "blockcore/vhdx/vhdx_log.h"

namespace vdkit {

namespace {

using namespace vhdx;

constexpr size_t kBitmapCacheBytes = 4u << 20;

class VhdxDevice final : public BlockDevice {
 public:
  VhdxDevice() : bitmaps_(kBitmapCacheBytes) {}
  uint64_t size() const override { return l_.virtual_size; }
  const ImageInfo& info() const override { return info_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    std::vector<MappedRun> runs;
    VDKIT_RETURN_IF_ERROR(map(offset, buf.size(), runs));
    return read_mapped_runs(runs, offset, buf, *file_, replayed_.get(), parent_.get());
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    std::vector<MappedRun> runs;
    VDKIT_RETURN_IF_ERROR(map(offset, length, runs));
    return mapped_run_extents(runs, parent_.get(), out);
  }

  // Reads `len` bytes of the file at `at`, as the log replay left it when there was one.
  Status read_host(uint64_t at, void* buf, size_t len) {
    if (replayed_) return replayed_->read(at, {static_cast<uint8_t*>(buf), len});
    return file_->ReadExact(at, buf, len);
  }

  std::shared_ptr<File> file_;
  BlockDevicePtr replayed_;  // the file with its log replayed, in memory; null when the log was empty
  Layout l_;
  std::vector<uint64_t> bat_;
  BlockDevicePtr parent_;
  ImageInfo info_;

 private:
  // The bits of payload block b in its chunk's sector bitmap (bit i of byte j is the block's sector 8j + i).
  Result<GrainBuffer> bitmap(uint64_t b) {
    uint64_t key = GrainCache::make_key(0, b);
    if (auto hit = bitmaps_.get(key)) return hit;
    uint64_t e = bat_[bitmap_index(l_, b)];
    const uint64_t sectors = l_.block_bytes / l_.logical_sector;
    auto buf = std::make_shared<std::vector<uint8_t>>(sectors / 8);
    if ((e & 7) != kFullyPresent)
      return Status::Corrupt("'" + file_->path() + "': payload block " + std::to_string(b) +
                             " is partially present but its chunk has no sector bitmap block");
    uint64_t at = (e >> 20) * kMiB + (b % l_.chunk_ratio) * (sectors / 8);
    VDKIT_RETURN_IF_ERROR(read_host(at, buf->data(), buf->size()));
    GrainBuffer out = std::move(buf);
    bitmaps_.put(key, out);
    return out;
  }

  Status map(uint64_t offset, uint64_t length, std::vector<MappedRun>& out) {
    const uint64_t bs = l_.block_bytes, end = offset + length;
    for (uint64_t b = offset / bs; b * bs < end; ++b) {
      const uint64_t base = b * bs, s = std::max(offset, base), t = std::min(end, base + bs);
      const uint64_t e = bat_[payload_index(l_, b)];
      const uint64_t host = (e >> 20) * kMiB;
      switch (e & 7) {
        case kFullyPresent:
          append_run(out, MappedRun{s, t - s, RunKind::kStored, host + (s - base)});
          break;
        case kZero:
          append_run(out, MappedRun{s, t - s, RunKind::kZero, 0});
          break;
        case kPartiallyPresent: {
          VDKIT_ASSIGN_OR_RETURN(GrainBuffer bm, bitmap(b));
          const uint8_t* bits = bm->data();
          const uint64_t ss = l_.logical_sector;
          auto bit = [&](uint64_t sec) { return (bits[sec / 8] >> (sec % 8)) & 1; };
          const uint64_t last = div_round_up(t - base, ss);
          for (uint64_t pos = s; pos < t;) {
            uint64_t sec = (pos - base) / ss;
            const int v = bit(sec);
            for (++sec; sec < last && bit(sec) == v;) ++sec;
            uint64_t run_end = std::min(t, base + sec * ss);
            append_run(out,
                       MappedRun{pos, run_end - pos, v ? RunKind::kStored : RunKind::kAbsent, host + (pos - base)});
            pos = run_end;
          }
          break;
        }
        default:  // not present, undefined, unmapped: nothing stored here (the parent's, or a hole)
          append_run(out, MappedRun{s, t - s, RunKind::kAbsent, 0});
      }
    }
    return Status::Ok();
  }

  GrainCache bitmaps_;
};

// Finds the parent through the locator (relative_path, then absolute_win32_path), under the path rules, and
// checks parent_linkage against the parent's DataWriteGuid.
Status open_parent(VhdxDevice& dev, const OpenContext& ctx) {
  const std::string& where = dev.file_->path();
  std::string linkage;
  std::vector<ParentName> candidates;
  for (const auto& key : {"relative_path", "absolute_win32_path"})
    for (const auto& [k, v] : dev.l_.parent_locator)
      if (k == key && !v.empty()) candidates.push_back({posix_from_windows_path(v), std::string("parent locator ") + key});
  for (const auto& [k, v] : dev.l_.parent_locator)
    if (k == "parent_linkage") linkage = v;
  VDKIT_ASSIGN_OR_RETURN(OpenedParent p, open_first_parent(ctx, where, candidates, "vhdx"));
  dev.parent_ = std::move(p.device);
  const ImageInfo& pi = dev.parent_->info();
  std::string have;
  for (const auto& [k, v] : pi.specific)
    if (k == "data-write-guid") have = v;
  std::string want = linkage;
  want.erase(std::remove_if(want.begin(), want.end(), [](char c) { return c == '{' || c == '}'; }), want.end());
  for (char& c : want) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  if (want != have)
    return Status::Corrupt("'" + where + "': parent_linkage " + linkage + " does not match the DataWriteGuid " + have +
                           " of parent disk '" + p.path + "' (the parent changed since this disk was made)");
  dev.info_.backing_filename = p.name;
  dev.info_.backing_format = pi.format;
  dev.info_.backing_resolved = p.path;
  dev.info_.backing = std::make_shared<ImageInfo>(pi);
  return Status::Ok();
}

// Checks where the header puts the log, reads it whole and finds what to replay.
Result<LogPlan> plan_replay(const ReadAt& read, const Header& h, uint64_t file_size, const std::string& where) {
  const std::string field = "'" + where + "': the header at " + hex(h.offset) + ": ";
  if (h.log_version != 0)
    return Status::Unsupported(field + "LogVersion " + std::to_string(h.log_version) + " (vdkit replays version 0)");
  if (h.log_length == 0 || h.log_length % kMiB || h.log_offset < kMiB || h.log_offset % kMiB)
    return Status::Corrupt(field + "the log at " + hex(h.log_offset) + " + " + std::to_string(h.log_length) +
                           " bytes is not a MiB-aligned region after the first MiB");
  if (h.log_length > kMaxLogBytes)
    return Status::Unsupported(field + "a log of " + std::to_string(h.log_length) + " bytes is over the limit of " +
                               std::to_string(kMaxLogBytes));
  std::vector<uint8_t> log(h.log_length);
  VDKIT_RETURN_IF_ERROR(read(h.log_offset, log.data(), log.size()));
  return plan_log_replay(log, h.log_guid, file_size, h.log_offset, where);
}

}  // namespace

Result<BlockDevicePtr> open_vhdx(std::shared_ptr<File> file, const OpenContext& ctx) {
  if (file->writable())
    return Status::Error(EROFS, "'" + file->path() + "': vdkit reads VHDX images but does not write them");
  const std::string where = file->path();
  VDKIT_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  ReadAt read = [&](uint64_t off, void* buf, size_t len) -> Status {
    if (!range_within(off, len, file_size))
      return Status::Corrupt("'" + where + "': a structure at " + hex(off) + " + " + std::to_string(len) +
                             " bytes lies past the end of the file (" + std::to_string(file_size) + " bytes)");
    return file->ReadExact(off, buf, len);
  };
  VDKIT_ASSIGN_OR_RETURN(Header h, read_current_header(read, where));
  auto dev = std::make_unique<VhdxDevice>();
  dev->file_ = file;
  std::string log_state = "empty";
  if (h.log_active()) {
    // Replay into memory; from here on every structure is read as the replay left it.
    VDKIT_ASSIGN_OR_RETURN(LogPlan plan, plan_replay(read, h, file_size, where));
    if (plan.entries.empty()) {
      log_state = "nothing to replay (" + plan.no_sequence_reason + ")";
      dev->info_.warnings.push_back("'" + where + "': the header's LogGuid " + guid_string(h.log_guid) +
                                    " is set but its log holds no valid entry with it (" + plan.no_sequence_reason +
                                    "): nothing was committed through the log, so the file is read as it is");
    } else {
      VDKIT_ASSIGN_OR_RETURN(dev->replayed_, replay_into_memory(file, file_size, plan));
      log_state = "replayed in memory: " + describe_log_replay(plan);
      dev->info_.warnings.push_back(
          "'" + where + "': the VHDX log (LogGuid " + guid_string(h.log_guid) + ") held writes not yet applied (" +
          describe_log_replay(plan) + "); they were replayed in memory and the disk is read as after replay; the "
          "file itself is unchanged");
      file_size = dev->replayed_->size();
      read = [&dev, &where, file_size](uint64_t off, void* buf, size_t len) -> Status {
        if (!range_within(off, len, file_size))
          return Status::Corrupt("'" + where + "': a structure at " + hex(off) + " + " + std::to_string(len) +
                                 " bytes lies past the end of the file after log replay (" +
                                 std::to_string(file_size) + " bytes)");
        return dev->replayed_->read(off, {static_cast<uint8_t*>(buf), len});
      };
    }
  }
  VDKIT_ASSIGN_OR_RETURN(dev->l_, read_layout(read, file_size, where));
  const Layout& l = dev->l_;

  std::vector<uint8_t> raw(l.bat_entries * 8);
  if (!raw.empty()) VDKIT_RETURN_IF_ERROR(read(l.bat_offset, raw.data(), raw.size()));
  dev->bat_.resize(l.bat_entries);
  for (uint64_t i = 0; i < l.bat_entries; ++i) {
    uint64_t e = load_le64(&raw[8 * i]);
    dev->bat_[i] = e;
    const bool is_bitmap = (i + 1) % (l.chunk_ratio + 1) == 0;
    const uint8_t state = e & 7;
    const uint64_t host = (e >> 20) * kMiB;
    std::string name = "BAT entry " + std::to_string(i) + " (file offset " + hex(l.bat_offset + 8 * i) + ")";
    if (is_bitmap) {
      if (state != kNotPresent && state != kFullyPresent)
        return Status::Corrupt("'" + where + "': " + name + ", a sector bitmap entry, has state " +
                               std::to_string(state));
      if (state == kFullyPresent && !range_within(host, kSectorBitmapBlockBytes, file_size))
        return Status::Corrupt("'" + where + "': " + name + " puts a sector bitmap block at " + hex(host) +
                               ", past the end of the file");
      continue;
    }
    uint64_t block = i - i / (l.chunk_ratio + 1);
    if (block >= l.payload_blocks) continue;
    if (state == 4 || state == 5 || (state == kPartiallyPresent && !l.has_parent))
      return Status::Corrupt("'" + where + "': " + name + " has payload state " + std::to_string(state) +
                             (state == kPartiallyPresent ? ", which only a differencing disk may use" : ""));
    uint64_t need = std::min<uint64_t>(l.block_bytes, l.virtual_size - block * l.block_bytes);
    if ((state == kFullyPresent || state == kPartiallyPresent) && (host < kMiB || !range_within(host, need, file_size)))
      return Status::Corrupt("'" + where + "': " + name + " puts payload block " + std::to_string(block) + " at " +
                             hex(host) + ", outside the file (" + std::to_string(file_size) + " bytes)");
  }

  ImageInfo& info = dev->info_;
  info.filename = where;
  info.format = "vhdx";
  // LeaveBlocksAllocated is what makes a disk fixed (its blocks may still be in the ZERO state).
  info.subformat = l.has_parent ? "differencing" : (l.leave_blocks_allocated ? "fixed" : "dynamic");
  info.virtual_size = l.virtual_size;
  info.actual_size = file->AllocatedBytes();
  info.cluster_size = l.block_bytes;
  info.version = 1;
  auto& sp = info.specific;
  sp.emplace_back("creator", l.creator);
  sp.emplace_back("logical-sector-size", std::to_string(l.logical_sector));
  sp.emplace_back("physical-sector-size", std::to_string(l.physical_sector));
  sp.emplace_back("disk-id", l.disk_id);
  sp.emplace_back("data-write-guid", guid_string(l.header.data_write_guid));
  sp.emplace_back("header", "sequence " + std::to_string(l.header.sequence) + " at " + hex(l.header.offset));
  sp.emplace_back("log", log_state);
  if (l.has_parent) {
    for (const auto& [k, v] : l.parent_locator) sp.emplace_back("parent-" + k, v);
    VDKIT_RETURN_IF_ERROR(open_parent(*dev, ctx));
  }
  return BlockDevicePtr(std::move(dev));
}

}  // namespace vdkit
