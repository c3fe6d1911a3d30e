// rpm's version order, which grub's blscfg sorts BLS entries by.
#pragma once

#include <string_view>

namespace vdkit::fixups {

// rpm's version comparison (what grub's blscfg sorts entries by): digit runs compare as numbers, letters as
// strings, '~' sorts before anything. <0, 0, >0.
int rpm_vercmp(std::string_view a, std::string_view b);

}  // namespace vdkit::fixups
