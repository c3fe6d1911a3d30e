// `vdkit batch --dry-run`: opens every disk, inspects every guest, lists its fixups, estimates each target and
// checks the free space of each target folder, without writing anything.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "batch/plan.h"
#include "blockcore/sources/image.h"

namespace vdkit::batch {

struct DryRunReport {
  nlohmann::json json;  // per guest: disks (virtual size, estimate), os, fixups, warnings, problems; per folder
  std::string text;     // the same for people
  size_t problems = 0;  // disks that do not open, guests that do not inspect, folders short of space
};

DryRunReport dry_run(const Plan& plan, const std::vector<size_t>& rows, const OpenOptions& open);

}  // namespace vdkit::batch
