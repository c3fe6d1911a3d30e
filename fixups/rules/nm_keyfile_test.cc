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

}  // namespace
}  // namespace vdkit::fixups
