// Stacks source, write layer and partition view in the one order every front end uses.
#include "blockcore/layers/device_stack.h"

#include "blockcore/base/checked.h"
#include "blockcore/layers/overlay.h"

namespace vdkit {

namespace {
// A label the front end left empty adds nothing.
Status labelled(const Status& st, const std::string& label) { return label.empty() ? st : st.Context(label); }
}  // namespace

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
  return st;
}

}  // namespace vdkit
