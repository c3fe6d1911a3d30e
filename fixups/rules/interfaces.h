// Debian's /etc/network/interfaces: iface stanzas from static to DHCP, pinned MACs dropped.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// Static -> DHCP (unless kKeep), pinned MAC addresses dropped.
std::string rewrite_interfaces(std::string_view text, Addressing addressing = Addressing::kToDhcp);
NetSummary summarize_interfaces(std::string_view text);

}  // namespace vdkit::fixups
