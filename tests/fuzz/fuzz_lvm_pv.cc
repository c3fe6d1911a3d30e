// Fuzzes the PV label, PV header, metadata area header and (wrapped) metadata text of one disk, then every LV the
// scan finds, read through its segment mapping.
#include "blockcore/lvm/lvm_volume.h"
#include "blockcore/testing/memory_device.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto disk = std::make_shared<vdkit::MemoryDevice>(std::vector<uint8_t>(data, data + size), false);
  auto found = vdkit::lvm::scan({{"fuzz", 0, 0, disk}});
  if (!found.ok()) return 0;
  for (const auto& vg : found->vgs)
    for (const auto& lv : vg.vg.lvs) {
      auto dev = vdkit::lvm::open_logical_volume(vg, lv.name);
      if (dev.ok()) vdkit::fuzz::exercise(**dev);
    }
  return 0;
}
