// /etc/fstab and /etc/crypttab: their device fields rewritten through a device map, and fstab's entries read.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fixups/rules/device_names.h"

namespace vdkit::fixups {

// /etc/fstab: the first field (device) of each entry.
std::string rewrite_fstab(std::string_view text, const DeviceMapFn& map);
// /etc/crypttab: the second field (encrypted device) of each entry.
std::string rewrite_crypttab(std::string_view text, const DeviceMapFn& map);

struct FstabEntry {
  std::string device, mount_point, type, options;
};
std::vector<FstabEntry> parse_fstab(std::string_view text);

}  // namespace vdkit::fixups
