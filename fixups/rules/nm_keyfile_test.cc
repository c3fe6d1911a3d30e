// Unit tests for NetworkManager keyfiles: ipv4 manual to auto, the MAC dropped.
#include "fixups/rules/nm_keyfile.h"

#include <gtest/gtest.h>

#include <string>

namespace vdkit::fixups {
namespace {

TEST(NmKeyfile, ManualToAuto) {
  std::string in =
      "[ethernet]\nmac-address=00:11\nmtu=1500\n[ipv4]\naddress1=1.2.3.4/24,1.2.3.1\nmethod=manual\n"
      "[ipv6]\naddress1=fe80::1/64\nmethod=manual\n";
  std::string out = rewrite_nm_keyfile(in);
  EXPECT_EQ(out, "[ethernet]\nmtu=1500\n[ipv4]\nmethod=auto\n[ipv6]\naddress1=fe80::1/64\nmethod=manual\n");
  EXPECT_EQ(rewrite_nm_keyfile(out), out);
}

// --network keep: ipv4 stays manual with its addresses; the pinned MAC goes.
TEST(NmKeyfile, KeepAddressesDropsOnlyTheMac) {
  std::string in = "[connection]\nid=eth0\n[ethernet]\nmac-address=00:16:3E:00:00:01\n[ipv4]\nmethod=manual\n"
                   "address1=10.0.0.5/24,10.0.0.1\n";
  std::string out = rewrite_nm_keyfile(in, Addressing::kKeep);
  EXPECT_EQ(out, "[connection]\nid=eth0\n[ethernet]\n[ipv4]\nmethod=manual\naddress1=10.0.0.5/24,10.0.0.1\n");
  EXPECT_EQ(rewrite_nm_keyfile(out, Addressing::kKeep), out);
  EXPECT_TRUE(summarize_nm_keyfile(out).is_static);
}

}  // namespace
}  // namespace vdkit::fixups
