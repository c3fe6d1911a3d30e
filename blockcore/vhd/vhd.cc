// The VHD driver (read-only): fixed, dynamic and differencing disks, with parents found through their locators.
//
// A request is cut into runs: data stored in this file (one host read each, all submitted as one batch), and
// ranges stored nowhere here, which read from the parent (differencing) or as zeros. A block absent from the BAT
// is one such range; inside a present block, sectors whose bitmap bit is clear are too. Bitmaps are read on
// demand and kept in a small cache.
#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/grain_cache.h"
#include "blockcore/base/ondisk_text.h"
#include "blockcore/sources/image.h"
#include "blockcore/sources/mapped_runs.h"
#include "blockcore/vhd/vhd_format.h"

namespace vdkit {

namespace {

using namespace vhd;

constexpr size_t kBitmapCacheBytes = 4u << 20;

class VhdDevice final : public BlockDevice {
 public:
  VhdDevice() : bitmaps_(kBitmapCacheBytes) {}

  uint64_t size() const override { return size_; }
  const ImageInfo& info() const override { return info_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    std::vector<MappedRun> runs;
    VDKIT_RETURN_IF_ERROR(map(offset, buf.size(), runs));
    return read_mapped_runs(runs, offset, buf, *file_, nullptr, parent_.get());
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    if (fixed_) {
      // File holes of a fixed disk read as zeros.
      std::vector<std::pair<uint64_t, uint64_t>> data;
      VDKIT_RETURN_IF_ERROR(file_->DataRuns(offset, length, data));
      uint64_t p = offset;
      for (auto [s, t] : data) {
        if (s > p) append_extent(out, {p, s - p, ExtentType::kHole});
        append_extent(out, {s, t - s, ExtentType::kData});
        p = t;
      }
      if (p < offset + length) append_extent(out, {p, offset + length - p, ExtentType::kHole});
      return Status::Ok();
    }
    std::vector<MappedRun> runs;
    VDKIT_RETURN_IF_ERROR(map(offset, length, runs));
    return mapped_run_extents(runs, parent_.get(), out);
  }

  // Opening fills these.
  std::shared_ptr<File> file_;
  uint64_t size_ = 0;
  bool fixed_ = false;
  uint64_t block_bytes_ = 0;
  uint64_t bitmap_bytes_ = 0;
  std::vector<uint32_t> bat_;
  BlockDevicePtr parent_;
  ImageInfo info_;

 private:
  // The sector bitmap of a present block, through the cache.
  Result<GrainBuffer> bitmap(uint64_t block) {
    uint64_t key = GrainCache::make_key(0, block);
    if (auto hit = bitmaps_.get(key)) return hit;
    auto buf = std::make_shared<std::vector<uint8_t>>(bitmap_bytes_);
    uint64_t at = uint64_t{bat_[block]} * kSectorBytes;
    Status st = file_->ReadExact(at, buf->data(), buf->size());
    if (!st.ok()) return st.Context("'" + file_->path() + "': sector bitmap of block " + std::to_string(block));
    GrainBuffer out = std::move(buf);
    bitmaps_.put(key, out);
    return out;
  }

  Status map(uint64_t offset, uint64_t length, std::vector<MappedRun>& out) {
    if (fixed_) {
      out.push_back(MappedRun{offset, length, RunKind::kStored, offset});
      return Status::Ok();
    }
    const uint64_t end = offset + length;
    for (uint64_t b = offset / block_bytes_; b * block_bytes_ < end; ++b) {
      const uint64_t base = b * block_bytes_;
      const uint64_t s = std::max(offset, base), t = std::min(end, base + block_bytes_);
      if (bat_[b] == kBatUnused) {
        append_run(out, MappedRun{s, t - s, RunKind::kAbsent, 0});
        continue;
      }
      const uint64_t data = uint64_t{bat_[b]} * kSectorBytes + bitmap_bytes_;
      VDKIT_ASSIGN_OR_RETURN(GrainBuffer bm, bitmap(b));
      const uint8_t* bits = bm->data();
      // Bit 7 of byte 0 is the block's first sector.
      auto bit = [&](uint64_t sector) { return (bits[sector / 8] >> (7 - sector % 8)) & 1; };
      const uint64_t last_sector = div_round_up(t - base, kSectorBytes);
      for (uint64_t pos = s; pos < t;) {
        uint64_t sec = (pos - base) / kSectorBytes;
        const int v = bit(sec);
        ++sec;
        while (sec < last_sector) {
          if (sec % 8 == 0 && sec + 8 <= last_sector && bits[sec / 8] == (v ? 0xff : 0x00)) {
            sec += 8;
          } else if (bit(sec) == v) {
            ++sec;
          } else {
            break;
          }
        }
        uint64_t run_end = std::min(t, base + sec * kSectorBytes);
        append_run(out, MappedRun{pos, run_end - pos, v != 0 ? RunKind::kStored : RunKind::kAbsent,
                                  data + (pos - base)});
        pos = run_end;
      }
    }
    return Status::Ok();
  }

  // The parent's bytes, zeros past its end (a parent smaller than its child).
  GrainCache bitmaps_;
};

// The footer: the one at the end, or for a dynamic or differencing disk whose end is damaged, its copy at
// offset 0. `note` says which was used.
Result<Footer> read_footer(const File& file, uint64_t file_size, std::string& note) {
  const std::string& where = file.path();
  if (file_size < kFooterBytes)
    return Status::Corrupt("'" + where + "': " + std::to_string(file_size) +
                           " bytes is too small for a VHD footer (512 bytes)");
  uint8_t tail[kFooterBytes], head[kFooterBytes];
  VDKIT_RETURN_IF_ERROR(file.ReadExact(file_size - kFooterBytes, tail, sizeof tail));
  auto f = parse_footer(tail, where, file_size - kFooterBytes);
  if (f.ok()) {
    note = "end of file";
    return f;
  }
  VDKIT_RETURN_IF_ERROR(file.ReadExact(0, head, sizeof head));
  if (!has_footer_cookie(head)) return f.status();
  auto copy = parse_footer(head, where, 0);
  if (!copy.ok()) return f.status().Context("and the copy at offset 0 is damaged too (" + copy.status().message() + ")");
  if (copy->type == DiskType::kFixed)
    return Status::Corrupt("'" + where + "': the copy of the footer at offset 0 says the disk is fixed, which has no "
                           "such copy; the footer at the end: " + f.status().message());
  note = "copy at offset 0 (the footer at the end is damaged: " + f.status().message() + ")";
  return copy;
}

// Finds and opens the parent of a differencing disk: the locators W2ru, W2ku and MacX in that order, then the
// parent's name from the header, each under the rules for names found inside images.
Status open_parent(VhdDevice& dev, const DynamicHeader& h, const OpenContext& ctx, uint64_t file_size) {
  const std::string& where = dev.file_->path();
  std::vector<ParentName> candidates;
  for (uint32_t code : {kCodeW2ru, kCodeW2ku, kCodeMacX}) {
    for (int i = 0; i < kParentLocators; ++i) {
      const ParentLocator& l = h.locators[i];
      if (l.code != code || l.data_length == 0) continue;
      std::string field = "parent locator " + std::to_string(i) + " (" + platform_code_name(code) + ")";
      if (l.data_length > kMaxLocatorBytes)
        return Status::Corrupt("'" + where + "': " + field + " holds " + std::to_string(l.data_length) +
                               " bytes, more than the limit of " + std::to_string(kMaxLocatorBytes) +
                               " (kMaxLocatorBytes)");
      if (!range_within(l.data_offset, l.data_length, file_size))
        return Status::Corrupt("'" + where + "': " + field + " data at " + hex(l.data_offset) + " + " +
                               std::to_string(l.data_length) + " bytes lies past the end of the file (" +
                               std::to_string(file_size) + " bytes)");
      std::vector<uint8_t> data(l.data_length);
      VDKIT_RETURN_IF_ERROR(dev.file_->ReadExact(l.data_offset, data.data(), data.size()));
      std::string name = locator_path(code, data);
      if (!name.empty()) candidates.push_back({name, field});
    }
  }
  if (!h.parent_name.empty()) candidates.push_back({h.parent_name, "the dynamic header's Parent Unicode Name"});
  if (candidates.empty())
    return Status::Corrupt("'" + where + "': a differencing disk with no parent locator and no parent name");

  VDKIT_ASSIGN_OR_RETURN(OpenedParent p, open_first_parent(ctx, where, candidates, "vhd"));
  dev.parent_ = std::move(p.device);
  const ImageInfo& pi = dev.parent_->info();
  std::string want = uuid_string(h.parent_uuid), have;
  for (const auto& [k, v] : pi.specific)
    if (k == "uuid") have = v;
  if (have != want)
    return Status::Corrupt("'" + where + "': the dynamic header's Parent Unique Id " + want +
                           " does not match the Unique Id " + have + " of parent disk '" + p.path +
                           "' (the parent is another disk, or changed since this one was made)");
  ImageInfo& info = dev.info_;
  info.backing_filename = p.name;
  info.backing_format = pi.format;
  info.backing_resolved = p.path;
  info.backing = std::make_shared<ImageInfo>(pi);
  return Status::Ok();
}

std::string version_string(uint32_t v) { return std::to_string(v >> 16) + "." + std::to_string(v & 0xffff); }

}  // namespace

Result<BlockDevicePtr> open_vhd(std::shared_ptr<File> file, const OpenContext& ctx) {
  if (file->writable())
    return Status::Error(EROFS, "'" + file->path() + "': vdkit reads VHD images but does not write them");
  const std::string where = file->path();
  VDKIT_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  std::string footer_note;
  VDKIT_ASSIGN_OR_RETURN(Footer f, read_footer(*file, file_size, footer_note));

  auto dev = std::make_unique<VhdDevice>();
  dev->file_ = file;
  dev->size_ = f.current_size;
  ImageInfo& info = dev->info_;
  info.filename = where;
  info.format = "vhd";
  info.virtual_size = f.current_size;
  info.actual_size = file->AllocatedBytes();
  info.version = static_cast<int>(f.version >> 16);
  const char* type = f.type == DiskType::kFixed ? "fixed" : f.type == DiskType::kDynamic ? "dynamic" : "differencing";
  info.subformat = type;

  DynamicHeader h;
  if (f.type == DiskType::kFixed) {
    dev->fixed_ = true;
    if (f.current_size > file_size - kFooterBytes)
      return Status::Corrupt("'" + where + "': footer field Current Size (offset 48) says the fixed disk holds " +
                             std::to_string(f.current_size) + " bytes, but the file has only " +
                             std::to_string(file_size - kFooterBytes) + " bytes before its footer");
  } else {
    if (!range_within(f.data_offset, kDynamicHeaderBytes, file_size))
      return Status::Corrupt("'" + where + "': footer field Data Offset (offset 16) points to " + hex(f.data_offset) +
                             "; the dynamic header there would lie past the end of the file (" +
                             std::to_string(file_size) + " bytes)");
    uint8_t hb[kDynamicHeaderBytes];
    VDKIT_RETURN_IF_ERROR(file->ReadExact(f.data_offset, hb, sizeof hb));
    VDKIT_ASSIGN_OR_RETURN(h, parse_dynamic_header(hb, f, where, f.data_offset));
    dev->block_bytes_ = h.block_bytes;
    // One bit a sector, padded to whole sectors.
    dev->bitmap_bytes_ = div_round_up(div_round_up(h.block_bytes / kSectorBytes, 8), kSectorBytes) * kSectorBytes;
    const uint64_t blocks = div_round_up(f.current_size, h.block_bytes);
    if (!range_within(h.table_offset, blocks * 4, file_size))
      return Status::Corrupt("'" + where + "': the BAT (dynamic header field Table Offset, at " + hex(h.table_offset) +
                             ", " + std::to_string(blocks) + " entries) lies past the end of the file (" +
                             std::to_string(file_size) + " bytes)");
    std::vector<uint8_t> raw(blocks * 4);
    if (!raw.empty()) VDKIT_RETURN_IF_ERROR(file->ReadExact(h.table_offset, raw.data(), raw.size()));
    dev->bat_.resize(blocks);
    for (uint64_t b = 0; b < blocks; ++b) {
      uint32_t e = load_be32(raw.data() + 4 * b);
      dev->bat_[b] = e;
      if (e == kBatUnused) continue;
      // The bitmap and the part of the block the disk uses must lie inside the file.
      uint64_t need = dev->bitmap_bytes_ + std::min<uint64_t>(h.block_bytes, f.current_size - b * h.block_bytes);
      if (!range_within(uint64_t{e} * kSectorBytes, need, file_size))
        return Status::Corrupt("'" + where + "': BAT entry " + std::to_string(b) + " (file offset " +
                               hex(h.table_offset + 4 * b) + ") puts block " + std::to_string(b) + " at sector " +
                               std::to_string(e) + " (" + hex(uint64_t{e} * kSectorBytes) + "), and its " +
                               std::to_string(need) + " bytes run past the end of the file (" +
                               std::to_string(file_size) + " bytes)");
    }
    info.cluster_size = h.block_bytes;
  }

  auto& sp = info.specific;
  sp.emplace_back("disk-type", type);
  sp.emplace_back("uuid", uuid_string(f.uuid));
  sp.emplace_back("creator", std::string(f.creator_app, strnlen(f.creator_app, 4)));
  sp.emplace_back("creator-version", version_string(f.creator_version));
  sp.emplace_back("creator-host-os", platform_code_name(load_be32(reinterpret_cast<const uint8_t*>(f.creator_os))));
  sp.emplace_back("geometry", std::to_string(f.cylinders) + "/" + std::to_string(f.heads) + "/" +
                                  std::to_string(f.sectors_per_track));
  sp.emplace_back("chs-size", std::to_string(f.chs_bytes()));
  sp.emplace_back("original-size", std::to_string(f.original_size));
  sp.emplace_back("footer", footer_note);
  if (f.saved_state) sp.emplace_back("saved-state", "yes");

  if (f.type == DiskType::kDifferencing) {
    sp.emplace_back("parent-uuid", uuid_string(h.parent_uuid));
    if (!h.parent_name.empty()) sp.emplace_back("parent-name", h.parent_name);
    VDKIT_RETURN_IF_ERROR(open_parent(*dev, h, ctx, file_size));
  }
  return BlockDevicePtr(std::move(dev));
}

}  // namespace vdkit
