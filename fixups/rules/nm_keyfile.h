// NetworkManager keyfiles (system-connections/*.nmconnection): ipv4 manual to auto, pinned MACs dropped.
#pragma once

#include <string>
#include <string_view>

#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// Static -> DHCP (unless kKeep), pinned MAC addresses dropped.
std::string rewrite_nm_keyfile(std::string_view text, Addressing addressing = Addressing::kToDhcp);
NetSummary summarize_nm_keyfile(std::string_view text);

}  // namespace vdkit::fixups
