// Builds the exported device from the plugin's parameters: source, then overlay (memory or qcow2 file), then partition.
#include "nbd-plugin/export.h"

#include <cstdio>
#include <filesystem>

#include "blockcore/base/checked.h"
#include "blockcore/layers/overlay.h"
#include "blockcore/layers/partition.h"
#include "blockcore/base/units.h"

namespace vdkit::nbd {

Status validate(ExportConfig& cfg) {
  if (cfg.file.empty()) return Status::Invalid("file=<image> is required: the source disk to export");
  if (!cfg.overlay_path.empty()) {
    if (cfg.write_mode_given && cfg.write_mode != WriteMode::kOverlay)
      return Status::Invalid("overlay=" + cfg.overlay_path + " needs writable=overlay (it was given writable=" +
                             (cfg.write_mode == WriteMode::kInPlace ? "in-place" : "false") + ")");
    cfg.write_mode = WriteMode::kOverlay;  // overlay= alone asks for an overlay
    std::error_code ec;
    if (std::filesystem::exists(cfg.overlay_path, ec))
      return Status::Error(EEXIST, "overlay=" + cfg.overlay_path +
                                       " already exists; vdkit makes a new overlay file and will not overwrite one");
    if (std::filesystem::weakly_canonical(cfg.overlay_path, ec) == std::filesystem::weakly_canonical(cfg.file, ec))
      return Status::Invalid("overlay= names the source file itself");
  }
  return Status::Ok();
}

namespace {

std::string describe(const ImageInfo& info, uint64_t size, const ExportConfig& cfg, const Partition* part) {
  std::string d = info.format;
  if (!info.subformat.empty()) d += " " + info.subformat;
  else if (info.format == "qcow2" && info.version) d += " v" + std::to_string(info.version);
  if (!info.compression.empty()) d += " (" + info.compression + ")";
  if (info.backing) d += " with backing " + info.backing->format;
  if (part)
    d += ", partition " + std::to_string(part->number) + " (" + part->scheme + " type " + part->type + ")";
  d += ", " + human_size(size);
  switch (cfg.write_mode) {
    case WriteMode::kReadOnly: d += ", read-only"; break;
    case WriteMode::kOverlay:
      d += cfg.overlay_path.empty() ? ", writes kept in memory" : ", writes go to qcow2 overlay " + cfg.overlay_path;
      break;
    case WriteMode::kInPlace: d += ", writes go to the source in place"; break;
  }
  return d;
}

}  // namespace

Result<Export> open_export(const ExportConfig& cfg, IoEngine* engine) {
  OpenOptions opts;
  opts.allow_external_paths = cfg.allow_external_paths;
  opts.format = cfg.format;
  opts.cache_bytes = cfg.cache_bytes;
  opts.engine = engine;
  opts.writable = cfg.write_mode == WriteMode::kInPlace;

  auto src = open_image(cfg.file, opts);
  if (!src.ok()) return src.status().Context("file=" + cfg.file);
  std::shared_ptr<BlockDevice> dev(std::move(*src));
  // Copied: the layers above may hand back the source's info by reference, and it outlives none of them.
  const ImageInfo info = dev->info();

  if (cfg.write_mode == WriteMode::kInPlace && !dev->caps().writable) {
    std::string fmt = info.format + (info.subformat.empty() ? "" : " " + info.subformat);
    return Status::Unsupported("writable=in-place: vdkit cannot write " + fmt + " images in place ('" + cfg.file +
                               "'); use writable=overlay to keep writes apart from the source");
  }
  if (cfg.write_mode == WriteMode::kOverlay) {
    if (cfg.overlay_path.empty()) {
      dev = make_memory_overlay(std::move(dev));
    } else {
      OpenOptions ov_opts = opts;
      ov_opts.writable = true;
      // The overlay names the source as given, so the pair can be moved together when it lies below the overlay.
      auto ov = create_qcow2_overlay(cfg.overlay_path, cfg.file, info.format, dev->size(), ov_opts);
      if (!ov.ok()) return ov.status().Context("overlay=" + cfg.overlay_path);
      dev = std::shared_ptr<BlockDevice>(std::move(*ov));
    }
  }

  Partition chosen;
  if (cfg.partition > 0) {
    auto table = read_partition_table(*dev);
    if (!table.ok()) return table.status().Context("partition=" + std::to_string(cfg.partition));
    std::string numbers;
    bool found = false;
    for (const auto& p : *table) {
      numbers += (numbers.empty() ? "" : ", ") + std::to_string(p.number);
      if (p.number == cfg.partition) {
        chosen = p;
        found = true;
      }
    }
    if (table->empty())
      return Status::Invalid("partition=" + std::to_string(cfg.partition) + ": '" + cfg.file +
                             "' has no MBR or GPT partition table");
    if (!found)
      return Status::Invalid("partition=" + std::to_string(cfg.partition) + ": '" + cfg.file +
                             "' has no such partition (it has " + numbers + ")");
    if (!range_within(chosen.offset, chosen.length, dev->size()) || chosen.length == 0)
      return Status::Corrupt("partition " + std::to_string(chosen.number) + " of '" + cfg.file +
                             "' lies outside the disk");
    dev = make_partition_view(std::move(dev), chosen.offset, chosen.length);
  }

  Export ex;
  ex.description = describe(info, dev->size(), cfg, cfg.partition > 0 ? &chosen : nullptr);
  if (info.cluster_size >= 4096 && info.cluster_size <= (2u << 20) && is_power_of_two(info.cluster_size))
    ex.preferred_block = static_cast<uint32_t>(info.cluster_size);
  ex.device = std::move(dev);
  return ex;
}

}  // namespace vdkit::nbd
