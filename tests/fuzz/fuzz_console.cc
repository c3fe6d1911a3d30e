// Fuzzes the inittab, securetty and 70-persistent-net.rules parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/cloud_init.h"
#include "fixups/rules/cmdline.h"
#include "fixups/rules/consoles.h"
#include "fixups/rules/device_names.h"
#include "fixups/rules/udev_net_rules.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  check_idempotent("inittab idempotent", in, [](std::string_view t) { return rewrite_inittab(t); });
  check_idempotent("securetty idempotent", in, [](std::string_view t) { return rewrite_securetty(t); });
  std::string rules = check_idempotent("persistent-net idempotent", in, [](std::string_view t) { return rewrite_persistent_net_rules(t); });
  if (count_udev_rules(rules) != 0) violated("persistent-net rules emptied", in, rules);
  (void)inittab_getty_ttys(in);
  (void)find_device_names(in);
  (void)find_consoles(in);
  (void)cloud_init_datasources(in);
  return 0;
}
