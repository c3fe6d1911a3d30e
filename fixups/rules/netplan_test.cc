// Unit tests for netplan: block and flow style, MAC and driver matches, static to DHCP, the name glob.
#include "fixups/rules/netplan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdkit::fixups {
namespace {

TEST(Netplan, MatchMacStaticAndIdempotent) {
  std::string in =
      "network:\n  version: 2\n  ethernets:\n    eth0:\n      match:\n        macaddress: \"00:11\"\n"
      "      set-name: eth0\n      addresses:\n        - 10.0.0.5/24\n      gateway4: 10.0.0.1\n"
      "      nameservers:\n        addresses: [10.0.0.2]\n    eth1:\n      match:\n        name: en*\n"
      "        macaddress: 00:22\n      set-name: eth1\n      macaddress: 00:33\n      dhcp4: no\n";
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      nameservers:\n"
            "        addresses: [10.0.0.2]\n    eth1:\n      match:\n        name: en*\n      set-name: eth1\n"
            "      dhcp4: no\n");
  EXPECT_EQ(rewrite_netplan(out), out);
}

TEST(Netplan, FlowStyleInterface) {
  std::string in =
      "# flow style\nnetwork:\n  version: 2\n  ethernets:\n"
      "    eth0: {match: {macaddress: \"52:54:00:12:34:56\"}, set-name: eth0, addresses: [10.0.0.5/24], dhcp4: no, "
      "gateway4: 10.0.0.1}  # pinned\n"
      "    eth1: {dhcp4: true, match: {name: \"en*\", macaddress: 00:11:22:33:44:55}}\n";
  NetSummary s = summarize_netplan(in);
  EXPECT_EQ(s.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(s.names, std::vector<std::string>{"eth0"});
  EXPECT_EQ(s.macs, (std::vector<std::string>{"52:54:00:12:34:56", "00:11:22:33:44:55"}));
  EXPECT_TRUE(s.is_static);
  EXPECT_TRUE(s.dhcp);
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "# flow style\nnetwork:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}  # pinned\n"
            "    eth1: {dhcp4: true, match: {name: \"en*\"}}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  NetSummary after = summarize_netplan(out);
  EXPECT_FALSE(after.is_static);
  EXPECT_TRUE(after.macs.empty());
}

TEST(Netplan, FlowValuesInBlockInterfaces) {
  std::string in =
      "network:\n  ethernets:\n    eth0:\n      match: {macaddress: 00:11:22:33:44:55}\n      set-name: eth0\n"
      "      addresses: [192.168.1.10/24, \"fe80::1/64\"]\n      nameservers: {addresses: [1.1.1.1]}\n"
      "    eth1:\n      match: { name: en1 ,  macaddress: 'aa:bb:cc:dd:ee:ff' }\n      dhcp4: yes\n";
  NetSummary s = summarize_netplan(in);
  EXPECT_EQ(s.names, std::vector<std::string>{"eth0"});
  EXPECT_EQ(s.macs, (std::vector<std::string>{"00:11:22:33:44:55", "aa:bb:cc:dd:ee:ff"}));
  EXPECT_TRUE(s.is_static);
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out,
            "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n      nameservers: {addresses: [1.1.1.1]}\n"
            "    eth1:\n      match: { name: en1 }\n      dhcp4: yes\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  EXPECT_FALSE(summarize_netplan(out).is_static);  // nameservers' addresses are not the interface's
}

TEST(Netplan, FlowEthernetsAndNetwork) {
  std::string in = "network: {version: 2, ethernets: {eth0: {addresses: [10.0.0.5/24], macaddress: \"00:11\"}}}\n";
  EXPECT_EQ(summarize_netplan(in).interfaces, std::vector<std::string>{"eth0"});
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out, "network: {version: 2, ethernets: {eth0: {dhcp4: true}}}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets: {eth0: {dhcp4, addresses: [1.2.3.4/8]}, eth1: {dhcp4: true}}\n";
  out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets: {eth0: {dhcp4: true}, eth1: {dhcp4: true}}\n");
  EXPECT_EQ(summarize_netplan(out).interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  // A flow collection over several lines is not understood: the file is left as it is.
  in = "network:\n  ethernets:\n    eth0: {addresses: [10.0.0.5/24],\n           dhcp4: no}\n";
  EXPECT_EQ(rewrite_netplan(in), in);
}

// A match on Xen's or VMware's NIC driver ("vif" is what udev reports for netfront) matches nothing on virtio_net:
// left in place, the interface would stay unconfigured on KVM. It goes like the MAC, with the set-name it carried.
TEST(Netplan, SourceNicDriverMatchGoesLikeTheMac) {
  std::string in = "network:\n  ethernets:\n    eth0:\n      match:\n        macaddress: \"52:54:00:aa:bb:cc\"\n"
                   "        driver: xen_netfront\n      set-name: eth0\n      dhcp4: true\n";
  std::string out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets:\n    eth0: {match: {driver: vif}, set-name: eth0, dhcp4: true}\n";
  out = rewrite_netplan(in);
  EXPECT_EQ(out, "network:\n  ethernets:\n    eth0: {dhcp4: true}\n");
  EXPECT_EQ(rewrite_netplan(out), out);
  in = "network:\n  ethernets:\n    eth0:\n      match: {macaddress: \"00:11\", driver: vmxnet3}\n      set-name: eth0\n"
       "      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in), "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n");
  // Any other driver, or a name match, is the guest's choice and stays.
  in = "network:\n  ethernets:\n    eth0:\n      match:\n        driver: virtio_net\n      set-name: eth0\n"
       "      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in), in);
  in = "network:\n  ethernets:\n    eth0: {match: {name: \"e*\", driver: ixgbe}, dhcp4: true}\n";
  EXPECT_EQ(rewrite_netplan(in), in);
}

// VMware's ens192 does not exist on KVM (ens3, enp1s0): a lone interface keyed by such a name is matched by a glob.
TEST(Netplan, LonePredictableNameIsMatchedByAGlob) {
  // cloud-init's file: the MAC's line becomes the glob, set-name goes.
  std::string in = "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n            match:\n"
                   "                macaddress: 00:50:56:8f:12:34\n            set-name: ens192\n    version: 2\n";
  std::string out = rewrite_netplan(in, "en*");
  EXPECT_EQ(out, "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n            match:\n"
                 "                name: \"en*\"\n    version: 2\n");
  EXPECT_EQ(rewrite_netplan(out, "en*"), out);
  EXPECT_EQ(summarize_netplan(out).name_matched, std::vector<std::string>{"ens192"});
  EXPECT_TRUE(summarize_netplan(in).name_matched.empty());
  // Without the glob (more than one NIC, or names pinned to eth<N>) only the MAC goes.
  EXPECT_EQ(rewrite_netplan(in), "network:\n    ethernets:\n        ens192:\n            dhcp4: true\n    version: 2\n");
  // No match at all: one is added, indented as the file is; static becomes DHCP as before.
  in = "network:\n  ethernets:\n    ens160:\n      addresses: [10.0.0.5/24]\n      gateway4: 10.0.0.1\n";
  out = rewrite_netplan(in, "en*");
  EXPECT_EQ(out, "network:\n  ethernets:\n    ens160:\n      match:\n        name: \"en*\"\n      dhcp4: true\n");
  EXPECT_EQ(rewrite_netplan(out, "en*"), out);
  // Left alone: two interfaces (one glob would take both configs), an eth name, a match the guest chose (a literal
  // name is reported, not guessed at), and the flow style.
  in = "network:\n  ethernets:\n    ens160:\n      dhcp4: true\n    ens192:\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  in = "network:\n  ethernets:\n    eth0:\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  in = "network:\n  ethernets:\n    ens192:\n      match:\n        name: ens192\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  EXPECT_TRUE(summarize_netplan(in).name_matched.empty());
  in = "network:\n  ethernets:\n    ens192: {dhcp4: true}\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  // Not a mapping under the key (a sequence at its indent, found by fuzzing; a value on its line): no match added.
  in = "network:\n  ethernets:\n    ens192:\n    - a\n      match:\n        macaddress: 00:11\n";
  EXPECT_EQ(summarize_netplan(rewrite_netplan(in, "en*")).interfaces, summarize_netplan(in).interfaces);
  in = "network:\n  ethernets:\n    ens192: x\n      dhcp4: true\n";
  EXPECT_EQ(rewrite_netplan(in, "en*"), in);
  EXPECT_EQ(summarize_netplan("network:\n  ethernets:\n    ens192: {match: {name: \"en*\"}}\n").name_matched,
            std::vector<std::string>{"ens192"});
  EXPECT_EQ(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"e[n]*\"}}}}\n").name_matched,
            std::vector<std::string>{"ens192"});
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: ens192}}}}\n").name_matched.empty());
  // A glob that misses ens3 or enp1s0 is as tied to the old layout as the name.
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"ens19*\"}}}}\n").name_matched.empty());
  EXPECT_TRUE(summarize_netplan("network: {ethernets: {ens192: {match: {name: \"ens*\"}}}}\n").name_matched.empty());
  EXPECT_TRUE(summarize_netplan("network:\n  renderer: NetworkManager\n").nm_renderer);
  EXPECT_TRUE(summarize_netplan("network: {version: 2, renderer: \"NetworkManager\"}\n").nm_renderer);
  EXPECT_FALSE(summarize_netplan("network:\n  renderer: networkd\n").nm_renderer);
}

// --network keep: addresses, gateway4 and routes stay and no dhcp4 is added; the MAC match still goes (block and
// flow style), and the name glob still takes a lone predictable name.
TEST(Netplan, KeepAddressesDropsOnlyTheMac) {
  std::string in =
      "network:\n  version: 2\n  ethernets:\n    ens192:\n      match:\n        macaddress: \"00:11\"\n"
      "      addresses:\n        - 10.0.0.5/24\n      gateway4: 10.0.0.1\n";
  std::string out = rewrite_netplan(in, "en*", Addressing::kKeep);
  EXPECT_EQ(out,
            "network:\n  version: 2\n  ethernets:\n    ens192:\n      match:\n        name: \"en*\"\n"
            "      addresses:\n        - 10.0.0.5/24\n      gateway4: 10.0.0.1\n");
  EXPECT_EQ(rewrite_netplan(out, "en*", Addressing::kKeep), out);
  EXPECT_TRUE(summarize_netplan(out).is_static);
  std::string flow = "network:\n  ethernets:\n    eth0: {match: {macaddress: \"00:11\"}, addresses: [10.0.0.5/24]}\n";
  std::string fout = rewrite_netplan(flow, "", Addressing::kKeep);
  EXPECT_EQ(fout, "network:\n  ethernets:\n    eth0: {addresses: [10.0.0.5/24]}\n");
  EXPECT_EQ(rewrite_netplan(fout, "", Addressing::kKeep), fout);
}

}  // namespace
}  // namespace vdkit::fixups
