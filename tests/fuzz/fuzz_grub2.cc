// Fuzzes the grub2 grub.cfg, /etc/default/grub and grubenv parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  check_idempotent("grub.cfg idempotent", in, [&](std::string_view t) { return rewrite_grub2_cfg(t, edit); });
  check_idempotent("default/grub idempotent", in, [&](std::string_view t) { return rewrite_default_grub(t, edit, true); });
  check_idempotent("default/grub (no uuids) idempotent", in, [&](std::string_view t) { return rewrite_default_grub(t, edit, false); });
  check_idempotent("grubenv idempotent", in, [&](std::string_view t) { return rewrite_grubenv(t, edit); });
  check_idempotent("cmdline idempotent", in, [&](std::string_view t) { return rewrite_cmdline(t, edit); });
  return 0;
}
