// Red Hat and SUSE ifcfg-* files and the route files beside them: static to DHCP, pinned MACs and old gateways gone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// Static -> DHCP (unless kKeep), pinned MAC addresses dropped.
std::string rewrite_ifcfg(std::string_view text, Addressing addressing = Addressing::kToDhcp);
NetSummary summarize_ifcfg(std::string_view text);
// Route files of an interface that rewrite_ifcfg turned from static to DHCP: SUSE's /etc/sysconfig/network/routes and
// ifroute-IFACE (DEST GATEWAY NETMASK IFACE), RHEL's route-IFACE (ip route arguments). Default routes for one of
// ifaces (the file's and DEVICE's names), or for no named interface, are commented out: the old gateway is not in the
// new cloud's network, and a second default route through it would break the one DHCP gives. Other routes stay.
std::string comment_out_default_routes(std::string_view text, const std::vector<std::string>& ifaces);

}  // namespace vdkit::fixups
