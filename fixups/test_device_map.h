// The device map the fixups tests share: partition 1 (ext4) by its UUID, partition 2 (swap, no UUID) by its LABEL.
#pragma once

#include <vector>

#include "fixups/disk.h"

namespace vdkit::fixups {

inline DeviceMapFn test_map() {
  std::vector<FsInfo> fs(2);
  fs[0].partition = 1;
  fs[0].type = "ext4";
  fs[0].uuid = "11111111-2222-3333-4444-555555555555";
  fs[1].partition = 2;
  fs[1].type = "swap";
  fs[1].label = "SWAP";
  static DeviceMapper* m = new DeviceMapper(fs, DeviceNaming::kUuid, 0);
  return m->fn();
}

}  // namespace vdkit::fixups
