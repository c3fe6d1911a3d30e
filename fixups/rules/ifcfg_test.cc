// Unit tests for ifcfg files (Red Hat and SUSE) and their route files: static to DHCP, MACs and gateways gone.
#include "fixups/rules/ifcfg.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vdkit::fixups {
namespace {

TEST(Ifcfg, StaticToDhcpDropsMac) {
  std::string in =
      "DEVICE=eth0\nBOOTPROTO=none\nIPADDR0=10.0.0.2\nPREFIX0=24\nGATEWAY=10.0.0.1\nHWADDR=aa:bb\nDNS1=1.1.1.1\n";
  std::string out = rewrite_ifcfg(in);
  EXPECT_EQ(out, "DEVICE=eth0\nBOOTPROTO=dhcp\nDNS1=1.1.1.1\n");
  EXPECT_EQ(rewrite_ifcfg(out), out);
  EXPECT_EQ(rewrite_ifcfg("DEVICE=eth0\nIPADDR=1.2.3.4"), "DEVICE=eth0\nBOOTPROTO=dhcp\n");
  EXPECT_EQ(rewrite_ifcfg("DEVICE=bond0\nBOOTPROTO=none\n"), "DEVICE=bond0\nBOOTPROTO=none\n");
}

TEST(Ifcfg, SuseStaticWithLladdr) {
  std::string in =
      "BOOTPROTO='static'\nBROADCAST=''\nIPADDR='192.168.1.10/24'\nIPADDR_2='10.0.0.1'\nPREFIXLEN_2='8'\n"
      "LLADDR='00:16:3e:00:00:01'\nNETMASK=''\nREMOTE_IPADDR=''\nSTARTMODE='auto'\n";
  NetSummary s = summarize_ifcfg(in);
  EXPECT_TRUE(s.is_static);
  EXPECT_EQ(s.macs, std::vector<std::string>{"00:16:3e:00:00:01"});
  std::string out = rewrite_ifcfg(in);
  EXPECT_EQ(out, "BOOTPROTO='dhcp'\nREMOTE_IPADDR=''\nSTARTMODE='auto'\n");
  EXPECT_EQ(rewrite_ifcfg(out), out);
  EXPECT_TRUE(summarize_ifcfg("BOOTPROTO='dhcp4'\n").dhcp);
  EXPECT_EQ(summarize_ifcfg("NAME=\"eth0\"\nDEVICE=ens3\n").names, std::vector<std::string>{"eth0"});
}

// The static gateway of an interface turned to DHCP goes with its address; other routes stay.
TEST(Routes, DefaultRoutesOfTheInterfaceAreCommentedOut) {
  // SUSE: DEST GATEWAY NETMASK IFACE.
  std::string in = "default 192.168.122.1 - -\n10.1.0.0/16 192.168.122.254 - eth0\n"
                   "default 10.9.9.1 - eth1\n0.0.0.0 10.0.0.1 0.0.0.0 eth0\n# default 1.1.1.1\n";
  std::string out = comment_out_default_routes(in, {"eth0"});
  EXPECT_EQ(out, "# default 192.168.122.1 - -\n10.1.0.0/16 192.168.122.254 - eth0\n"
                 "default 10.9.9.1 - eth1\n# 0.0.0.0 10.0.0.1 0.0.0.0 eth0\n# default 1.1.1.1\n");
  EXPECT_EQ(comment_out_default_routes(out, {"eth0"}), out);
  // RHEL route-eth0: ip route arguments.
  in = "default via 10.0.0.1 dev eth0\n10.2.0.0/16 via 10.0.0.254\n0.0.0.0/0 via 10.0.0.1\ndefault via 10.5.0.1 dev eth1\n";
  EXPECT_EQ(comment_out_default_routes(in, {"eth0"}), "# default via 10.0.0.1 dev eth0\n10.2.0.0/16 via 10.0.0.254\n"
                                                    "# 0.0.0.0/0 via 10.0.0.1\ndefault via 10.5.0.1 dev eth1\n");
  // A host route to 0.0.0.0 is not a default route.
  EXPECT_EQ(comment_out_default_routes("0.0.0.0 10.0.0.1 255.255.255.255 -\n", {"eth0"}),
            "0.0.0.0 10.0.0.1 255.255.255.255 -\n");
}

// --network keep: the addresses and gateway stay, only the pinned MAC goes.
TEST(Ifcfg, KeepAddressesDropsOnlyTheMac) {
  std::string in =
      "DEVICE=eth0\nBOOTPROTO=none\nIPADDR0=10.0.0.2\nPREFIX0=24\nGATEWAY=10.0.0.1\nHWADDR=aa:bb\nDNS1=1.1.1.1\n";
  std::string out = rewrite_ifcfg(in, Addressing::kKeep);
  EXPECT_EQ(out, "DEVICE=eth0\nBOOTPROTO=none\nIPADDR0=10.0.0.2\nPREFIX0=24\nGATEWAY=10.0.0.1\nDNS1=1.1.1.1\n");
  EXPECT_EQ(rewrite_ifcfg(out, Addressing::kKeep), out);
  EXPECT_TRUE(summarize_ifcfg(out).is_static);
  EXPECT_EQ(rewrite_ifcfg("DEVICE=eth0\nIPADDR=1.2.3.4", Addressing::kKeep), "DEVICE=eth0\nIPADDR=1.2.3.4");
}

}  // namespace
}  // namespace vdkit::fixups
