// Stacks source, write layer and partition view in the one order every front end uses.
#include "blockcore/layers/device_stack.h"

#include "blockcore/base/checked.h"
#include "blockcore/layers/overlay.h"

namespace vdkit {

namespace {
// A label the front end left empty adds nothing.
Status labelled(const Status& st, const std::string& label) { return label.empty() ? st : st.Context(label); }
}  // namespace

Result<BlockDevicePtr> open_lv_on(const std::vector<GuestDisk>& disks, const std::string& lv) {
  VDKIT_ASSIGN_OR_RETURN(auto scan, scan_volume_groups(disks));
  return open_lv(scan, lv);
}

Result<Partition> find_partition(BlockDevice& disk, int number, const std::string& disk_name) {
  VDKIT_ASSIGN_OR_RETURN(auto table, read_partition_table(disk));
  if (table.empty()) return Status::Invalid("'" + disk_name + "' has no MBR or GPT partition table");
  std::string numbers;
  const Partition* chosen = nullptr;
  for (const auto& p : table) {
    numbers += (numbers.empty() ? "" : ", ") + std::to_string(p.number);
    if (p.number == number) chosen = &p;
  }
  if (!chosen)
    return Status::Invalid("'" + disk_name + "' has no partition " + std::to_string(number) + " (it has " + numbers +
                           ")");
  if (!range_within(chosen->offset, chosen->length, disk.size()) || chosen->length == 0)
    return Status::Corrupt("partition " + std::to_string(number) + " of '" + disk_name + "' lies outside the disk");
  return *chosen;
}

Result<DeviceStack> open_device_stack(const StackSpec& spec) {
  if (spec.partition > 0 && !spec.lv.empty())
    return Status::Invalid("a partition and a logical volume cannot both be chosen (partition " +
                           std::to_string(spec.partition) + ", LV " + spec.lv + ")");
  OpenOptions opts = spec.open;
  opts.writable = spec.writes == WriteLayer::kInPlace;
  auto src = open_image(spec.source, opts);
  if (!src.ok()) return labelled(src.status(), spec.labels.source);
  DeviceStack st;
  st.disk = std::shared_ptr<BlockDevice>(std::move(*src));
  st.source_info = st.disk->info();

  switch (spec.writes) {
    case WriteLayer::kNone: break;
    case WriteLayer::kInPlace:
      if (!st.disk->caps().writable) {
        const ImageInfo& i = st.source_info;
        std::string fmt = i.format + (i.subformat.empty() ? "" : " " + i.subformat);
        Status refused = Status::Unsupported("vdkit cannot write " + fmt + " images in place ('" + spec.source +
                                             "'); " + spec.labels.overlay_hint + " to keep writes apart from the source");
        return labelled(refused, spec.labels.in_place);
      }
      break;
    case WriteLayer::kMemoryOverlay: st.disk = make_memory_overlay(std::move(st.disk)); break;
    case WriteLayer::kQcow2Overlay: {
      OpenOptions ov_opts = spec.open;
      ov_opts.writable = true;
      // The overlay names the source as given, so the pair can be moved together when it lies below the overlay.
      auto ov = create_qcow2_overlay(spec.overlay_path, spec.source, st.source_info.format, st.disk->size(), ov_opts);
      if (!ov.ok()) return labelled(ov.status(), spec.labels.overlay);
      st.disk = std::shared_ptr<BlockDevice>(std::move(*ov));
      break;
    }
  }

  st.top = st.disk;
  if (spec.partition > 0) {
    auto p = find_partition(*st.disk, spec.partition, spec.source);
    if (!p.ok()) return labelled(p.status(), spec.labels.partition);
    st.partition = *p;
    st.top = make_partition_view(st.disk, p->offset, p->length);
  }
  if (!spec.lv.empty()) {
    // The other disks get the same kind of write layer, so an LV's writes go to one place whatever PV they hit.
    std::vector<GuestDisk> disks{{spec.source, st.disk}};
    for (const auto& path : spec.lv_disks) {
      if (spec.writes == WriteLayer::kQcow2Overlay)
        return labelled(Status::Invalid("a qcow2 overlay covers one disk; an LV on several disks takes writes in "
                                        "memory or in place"), spec.labels.lv);
      auto d = open_image(path, opts);
      if (!d.ok()) return labelled(d.status().Context("'" + path + "'"), spec.labels.lv);
      std::shared_ptr<BlockDevice> dev(std::move(*d));
      if (spec.writes == WriteLayer::kMemoryOverlay) dev = make_memory_overlay(std::move(dev));
      if (spec.writes == WriteLayer::kInPlace && !dev->caps().writable)
        return labelled(Status::Unsupported("vdkit cannot write '" + path + "' in place"), spec.labels.in_place);
      disks.push_back({path, std::move(dev)});
    }
    auto lv = open_lv_on(disks, spec.lv);
    if (!lv.ok()) return labelled(lv.status(), spec.labels.lv);
    st.top = std::shared_ptr<BlockDevice>(std::move(*lv));
    st.lv = spec.lv;
  }
  return st;
}

}  // namespace vdkit
