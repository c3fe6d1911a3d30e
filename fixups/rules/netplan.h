// netplan YAML (/etc/netplan/*.yaml): ethernets from static to DHCP, MAC and source-driver matches dropped.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// Static -> DHCP (unless kKeep), pinned MAC addresses dropped.
// name_glob ("en*"): when the file configures exactly one ethernet, keyed by a predictable name (ens192) and matched
// by nothing else once the MAC is gone, it gains `match: {name: GLOB}` so the NIC KVM names ens3/enp1s0 takes it.
std::string rewrite_netplan(std::string_view text, const std::string& name_glob = "",
                            Addressing addressing = Addressing::kToDhcp);
NetSummary summarize_netplan(std::string_view text);

}  // namespace vdkit::fixups
