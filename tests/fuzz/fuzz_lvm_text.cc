// Fuzzes the LVM2 text-format parser and the VG builder on top of it (segments, stripes, limits, per-LV checks).
#include <string_view>

#include "blockcore/lvm/lvm_text.h"
#include "blockcore/lvm/lvm_vg.h"
#include "blockcore/lvm/lvm_volume.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = vdkit::lvm::parse_text(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!text.ok()) return 0;
  auto vg = vdkit::lvm::parse_volume_group(*text);
  if (!vg.ok()) return 0;
  for (const auto& lv : vg->lvs) (void)lv.type();
  for (size_t i = 0; i < vg->pvs.size(); ++i) (void)vdkit::lvm::unused_extents(*vg, i);
  return 0;
}
