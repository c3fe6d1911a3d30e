// udev's 70-persistent-net.rules, which pins NIC names to the old hypervisor's MACs.
#pragma once

#include <string>
#include <string_view>

namespace vdkit::fixups {

// udev 70-persistent-net.rules: emptied; the count of rules it held, for inspection.
std::string rewrite_persistent_net_rules(std::string_view text);
int count_udev_rules(std::string_view text);

}  // namespace vdkit::fixups
