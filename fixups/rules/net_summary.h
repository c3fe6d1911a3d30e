// What a network config says (interfaces, static or DHCP, pinned MACs), whichever dialect it is written in.
#pragma once

#include <string>
#include <vector>

namespace vdkit::fixups {

// What a network rewrite does with an interface's addresses: make a static one DHCP (the default: the old
// addresses and gateway are rarely right in the new cloud), or keep it as configured (--network keep: the guest
// moves with its addresses, and only what ties the config to the old hardware, such as pinned MACs, goes).
enum class Addressing { kToDhcp, kKeep };

// What a network config says, for inspection.
struct NetSummary {
  std::vector<std::string> interfaces;
  bool is_static = false;
  bool dhcp = false;
  std::vector<std::string> macs;
  // Other names the config gives its interfaces: netplan set-name, ifcfg NAME (the connection's name).
  std::vector<std::string> names;
  // netplan interfaces matched by a name glob that takes KVM's virtio NIC (ens3 and enp1s0 both): their key is
  // only an id.
  std::vector<std::string> name_matched;
  // netplan: renderer: NetworkManager, whose netplan backend (before NM 1.14) refuses name globs.
  bool nm_renderer = false;
};

}  // namespace vdkit::fixups
