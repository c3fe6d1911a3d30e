// Unit tests every rewriter of fixups/rules must pass together: totality and idempotence on arbitrary input.
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "fixups/rules/bls.h"
#include "fixups/rules/consoles.h"
#include "fixups/rules/default_grub.h"
#include "fixups/rules/device_names.h"
#include "fixups/rules/fstab.h"
#include "fixups/rules/grub2.h"
#include "fixups/rules/grub_legacy.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/ifcfg.h"
#include "fixups/rules/interfaces.h"
#include "fixups/rules/netplan.h"
#include "fixups/rules/nm_keyfile.h"
#include "fixups/rules/syslinux.h"
#include "fixups/test_device_map.h"

namespace vdkit::fixups {
namespace {

// Every rewriter is total: arbitrary bytes never crash it, and its output is a fixed point.
TEST(Rewriters, TotalOnArbitraryInput) {
  std::mt19937 rng(1234);
  const char alphabet[] = "ab=: \t\n\r#-[]{}\"'/devxvda1sdhroot=console=hvc0xvc0matchmacaddress:iface static0";
  CmdlineEdit e{test_map(), true, {"net.ifnames=0", "biosdevname=0"}};
  for (int n = 0; n < 3000; ++n) {
    std::string s(rng() % 200, ' ');
    for (auto& c : s) c = rng() % 8 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % (sizeof alphabet - 1)];
    std::vector<std::function<std::string(std::string_view)>> fs = {
        [&](std::string_view t) { return rewrite_fstab(t, e.map); },
        [&](std::string_view t) { return rewrite_crypttab(t, e.map); },
        [&](std::string_view t) { return rewrite_grub_legacy(t, e); },
        [&](std::string_view t) { return rewrite_grub2_cfg(t, e); },
        [&](std::string_view t) { return rewrite_default_grub(t, e, true); },
        [&](std::string_view t) { return rewrite_bls_entry(t, e); },
        [&](std::string_view t) { return rewrite_grubenv(t, e); },
        [&](std::string_view t) { return rewrite_syslinux(t, e); },
        [](std::string_view t) { return rewrite_ifcfg(t); },
        [](std::string_view t) { return rewrite_interfaces(t); },
        [](std::string_view t) { return rewrite_netplan(t); },
        [](std::string_view t) { return rewrite_nm_keyfile(t); },
        [](std::string_view t) { return rewrite_inittab(t); },
        [](std::string_view t) { return rewrite_securetty(t); },
        [](std::string_view t) { return set_grub2_default(t, "a>b"); },
        [](std::string_view t) { return set_default_grub_default(t, "a>b"); },
        [](std::string_view t) { return set_grubenv_var(t, "saved_entry", "a>b").value_or(std::string(t)); },
    };
    for (size_t k = 0; k < fs.size(); ++k) {
      std::string once = fs[k](s);
      EXPECT_EQ(fs[k](once), once) << "rewriter " << k << " is not idempotent on: " << testing::PrintToString(s);
    }
    (void)parse_grub_legacy(s);
    (void)parse_grub2_cfg(s);
    (void)parse_syslinux(s);
    (void)parse_bls_entry(s);
    (void)summarize_netplan(s);
    (void)parse_device_name(s);
  }
}

}  // namespace
}  // namespace vdkit::fixups
