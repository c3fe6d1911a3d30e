// The one builder of the device stack every front end serves: source image, then a write layer, then a partition.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "blockcore/base/block_device.h"
#include "blockcore/layers/partition.h"
#include "blockcore/layers/volumes.h"
#include "blockcore/sources/image.h"

namespace vdkit {

// Where writes go. The source is never written unless the user asked for kInPlace.
enum class WriteLayer {
  kNone,           // read-only
  kMemoryOverlay,  // copy-on-write in memory, gone when the device closes
  kQcow2Overlay,   // a new qcow2 file backed by the source (overlay_path)
  kInPlace,        // the source itself, for drivers that can write it
};

// How errors name what the user gave: the nbdkit plugin says "file=disk.vmdk",
// "overlay=...", "partition=2"; the CLI says "'disk.vmdk'", "--overlay", "--partition 2".
// An empty label adds no context (the message already names the file).
struct StackLabels {
  std::string source;        // context of a failed open
  std::string overlay;       // context of a failed overlay creation
  std::string in_place;      // context of a refused in-place write
  std::string overlay_hint;  // what to use instead of in-place ("use writable=overlay")
  std::string partition;     // context of a partition that cannot be had
  std::string lv;            // context of an LV that cannot be had ("lv=vg/root", "--lv vg/root")
};

struct StackSpec {
  std::string source;        // the image's path
  OpenOptions open;          // writable is set from `writes`
  WriteLayer writes = WriteLayer::kNone;
  std::string overlay_path;  // kQcow2Overlay: the new file (refused if it exists)
  int partition = 0;         // > 0: expose only this partition
  std::string lv;            // non-empty: expose only this logical volume ("VG/LV"), found on the disk's PVs
  std::vector<std::string> lv_disks;  // with lv: the guest's other disks, searched for PVs of the VG too
  StackLabels labels;
};

struct DeviceStack {
  std::shared_ptr<BlockDevice> disk;  // the source with its write layer: the whole disk
  std::shared_ptr<BlockDevice> top;   // what to serve: `disk`, or the partition's view of it
  ImageInfo source_info;              // copied: layers above may hand back the source's by reference
  std::optional<Partition> partition; // the partition `top` shows
  std::string lv;                     // the LV `top` shows, as "VG/LV"
};

// Opens the source, adds the write layer, then the partition view or the LV (one of them; both is refused). Errors
// carry the matching label as context, and name the partitions there are.
Result<DeviceStack> open_device_stack(const StackSpec& spec);

// The LV "VG/LV" found on the PVs of `disks` (several when the VG spans them).
Result<BlockDevicePtr> open_lv_on(const std::vector<GuestDisk>& disks, const std::string& lv);

// Partition `number` of disk, checked to lie inside it. `disk_name` is for
// messages: "'web1.vmdk' has no partition 3 (it has 1, 2, 5)", or "... has no
// MBR or GPT partition table".
Result<Partition> find_partition(BlockDevice& disk, int number, const std::string& disk_name);

}  // namespace vdkit
