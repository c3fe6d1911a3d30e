// cloud-init's cloud.cfg: the datasources it will try.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups {

// cloud-init's datasource_list values in a cloud.cfg text.
std::vector<std::string> cloud_init_datasources(std::string_view text);

}  // namespace vdkit::fixups
