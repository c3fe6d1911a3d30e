// Builds the exported device from the plugin's parameters: source, then overlay (memory or qcow2 file), then partition or LV.
#include "nbd-plugin/export.h"

#include <cstdio>
#include <filesystem>

#include "blockcore/base/checked.h"
#include "blockcore/layers/device_stack.h"
#include "blockcore/base/units.h"
#include "guestfs/sparse_map.h"

namespace vdkit::nbd {

Status validate(ExportConfig& cfg) {
  if (cfg.file.empty()) return Status::Invalid("file=<image> is required: the source disk to export");
  if (cfg.sparsify && (cfg.write_mode != WriteMode::kReadOnly || !cfg.overlay_path.empty()))
    return Status::Invalid("sparsify=true needs a read-only export (writable=false, no overlay=): a write to a "
                           "range it reads as zeros would be lost");
  if (!cfg.lv_disks.empty() && cfg.lv.empty())
    return Status::Invalid("disk= names the other disks of an LV's volume group; it needs lv=VG/LV");
  if (cfg.partition > 0 && !cfg.lv.empty())
    return Status::Invalid("partition=" + std::to_string(cfg.partition) + " and lv=" + cfg.lv +
                           " cannot both be given: an LV is found on the disk's partitions by itself");
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

std::string describe(const ImageInfo& info, uint64_t size, const ExportConfig& cfg, const Partition* part,
                     const std::string& lv) {
  std::string d = info.format;
  if (!info.subformat.empty()) d += " " + info.subformat;
  else if (info.format == "qcow2" && info.version) d += " v" + std::to_string(info.version);
  if (!info.compression.empty()) d += " (" + info.compression + ")";
  if (info.backing) d += " with backing " + info.backing->format;
  if (part)
    d += ", partition " + std::to_string(part->number) + " (" + part->scheme + " type " + part->type + ")";
  if (!lv.empty()) d += ", logical volume " + lv;
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
  StackSpec spec;
  spec.source = cfg.file;
  spec.open.allow_external_paths = cfg.allow_external_paths;
  spec.open.xva_disk = cfg.xva_disk;
  spec.open.format = cfg.format;
  spec.open.cache_bytes = cfg.cache_bytes;
  spec.open.engine = engine;
  switch (cfg.write_mode) {
    case WriteMode::kReadOnly: spec.writes = WriteLayer::kNone; break;
    case WriteMode::kInPlace: spec.writes = WriteLayer::kInPlace; break;
    case WriteMode::kOverlay:
      spec.writes = cfg.overlay_path.empty() ? WriteLayer::kMemoryOverlay : WriteLayer::kQcow2Overlay;
      break;
  }
  spec.overlay_path = cfg.overlay_path;
  spec.partition = cfg.partition;
  spec.lv = cfg.lv;
  spec.lv_disks = cfg.lv_disks;
  spec.labels = {"file=" + cfg.file, "overlay=" + cfg.overlay_path, "writable=in-place", "use writable=overlay",
                 "partition=" + std::to_string(cfg.partition), "lv=" + cfg.lv};
  VDKIT_ASSIGN_OR_RETURN(DeviceStack stack, open_device_stack(spec));
  const ImageInfo& info = stack.source_info;

  Export ex;
  ex.description = describe(info, stack.top->size(), cfg, stack.partition ? &*stack.partition : nullptr, stack.lv);
  if (cfg.sparsify) {
    // The map is the whole disk's (partition tables, gaps, every volume); a partition export shows its part of it.
    // An LV is mapped as a disk of its own (its file system, or the partitions of a guest disk kept in it).
    guestfs::SparseMap map;
    auto masked = guestfs::make_sparsified_device(stack.lv.empty() ? stack.disk : stack.top, &map);
    if (!masked.ok()) return masked.status().Context("sparsify=true: " + (stack.lv.empty() ? "file=" + cfg.file
                                                                                          : "lv=" + stack.lv));
    stack.top = stack.partition ? std::shared_ptr<BlockDevice>(make_partition_view(
                                      *masked, stack.partition->offset, stack.partition->length))
                                : *masked;
    ex.description += ", sparsified (" + human_size(map.unused_bytes()) + " unused read as zeros)";
    ex.sparsify_report = guestfs::sparse_summary(map);
  }
  if (info.cluster_size >= 4096 && info.cluster_size <= (2u << 20) && is_power_of_two(info.cluster_size))
    ex.preferred_block = static_cast<uint32_t>(info.cluster_size);
  ex.device = std::move(stack.top);
  return ex;
}

}  // namespace vdkit::nbd
