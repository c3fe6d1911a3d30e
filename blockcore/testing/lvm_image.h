// Writes LVM2 PV labels and metadata areas into a byte buffer, for unit tests and fuzz seeds. The layout follows
// lvm2's (label in sector 1, one metadata area after it); the integration tests check the reader against lvm2 itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vdkit::test {

struct PvImageSpec {
  std::string uuid;              // 32 letters/digits
  uint64_t size = 8 << 20;       // bytes of the PV
  uint64_t mda_offset = 4096;    // where the metadata area starts
  uint64_t mda_size = 64 << 10;  // bytes, header included
  uint64_t pe_start = 1 << 20;   // bytes: the data area's start
  uint64_t text_offset = 512;    // where in the area the text starts (past the end of the ring wraps it)
};

// A PV of spec.size bytes (zeros outside the label and area) whose one metadata copy is `text`.
std::vector<uint8_t> make_pv_image(const PvImageSpec& spec, const std::string& text);

// The metadata text of VG `vg` (uuid `vg_uuid`, seqno) with extent size `extent_sectors` whose PV and LV sections are
// given as text (lvm2's own layout: `pv0 { ... }`, `lv { ... segment1 { ... } }`).
std::string vg_text(const std::string& vg, int seqno, uint64_t extent_sectors, const std::string& pvs,
                    const std::string& lvs);

}  // namespace vdkit::test
