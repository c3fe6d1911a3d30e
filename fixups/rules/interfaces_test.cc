// Unit tests for Debian's /etc/network/interfaces: only iface stanzas change.
#include "fixups/rules/interfaces.h"

#include <gtest/gtest.h>

#include <string>

namespace vdkit::fixups {
namespace {

TEST(Interfaces, StanzasOnly) {
  std::string in =
      "auto lo\niface lo inet loopback\n    address 127.0.0.1\niface eth0 inet static\n  address 1.2.3.4\n"
      "  netmask 255.0.0.0\n  # keep\n  up route add x\niface eth1 inet dhcp\n  hwaddress ether 00:11\n";
  std::string out = rewrite_interfaces(in);
  EXPECT_EQ(out,
            "auto lo\niface lo inet loopback\n    address 127.0.0.1\niface eth0 inet dhcp\n  # keep\n"
            "  up route add x\niface eth1 inet dhcp\n");
  EXPECT_EQ(rewrite_interfaces(out), out);
}

// --network keep: the static stanza stays whole, only hwaddress goes.
TEST(Interfaces, KeepAddressesDropsOnlyTheMac) {
  std::string in = "auto eth0\niface eth0 inet static\n  address 10.0.0.5\n  netmask 255.255.255.0\n"
                   "  gateway 10.0.0.1\n  hwaddress ether 00:16:3e:00:00:01\n";
  std::string out = rewrite_interfaces(in, Addressing::kKeep);
  EXPECT_EQ(out, "auto eth0\niface eth0 inet static\n  address 10.0.0.5\n  netmask 255.255.255.0\n"
                 "  gateway 10.0.0.1\n");
  EXPECT_EQ(rewrite_interfaces(out, Addressing::kKeep), out);
  EXPECT_TRUE(summarize_interfaces(out).is_static);
}

}  // namespace
}  // namespace vdkit::fixups
