// The LVM part of `vdkit info` and `vdkit inspect`: volume groups, their PVs (and where each was found) and LVs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "blockcore/lvm/lvm_volume.h"

namespace vdkit {

// JSON: [{"name", "uuid", "seqno", "extent-size", "metadata-from", "pvs": [{"name", "uuid", "found-on", "pe-start",
// "pe-count", "unused-bytes"}], "lvs": [{"name", "uuid", "size", "type", "visible", "segments": [{"start-extent",
// "extent-count", "type", "stripe-size", "stripes": [{"pv", "start-extent"}]}], "pvs", "refused"}]}]
nlohmann::json volume_groups_json(const lvm::ScanResult& scan);

// Human lines, indented by `indent`: one per VG, PV and LV, with sizes, types and what is refused.
std::string volume_groups_text(const lvm::ScanResult& scan, const std::string& indent = "");

}  // namespace vdkit
