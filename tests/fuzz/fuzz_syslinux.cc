// Fuzzes the syslinux/extlinux parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/syslinux.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  std::string out = check_idempotent("syslinux idempotent", in, [&](std::string_view t) { return rewrite_syslinux(t, edit); });
  BootMenu before = parse_syslinux(in), after = parse_syslinux(out);
  if (before.entries.size() != after.entries.size()) violated("syslinux entries kept", in, out);
  if (!before.entries.empty()) {
    std::string label = before.entries[size % before.entries.size()].title;
    check_idempotent("syslinux default idempotent", in, [&](std::string_view t) { return set_syslinux_default(t, label); });
  }
  return 0;
}
