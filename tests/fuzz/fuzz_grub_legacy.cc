// Fuzzes the grub legacy menu.lst/grub.conf parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/grub_legacy.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  std::string out = check_idempotent("grub legacy idempotent", in, [&](std::string_view t) { return rewrite_grub_legacy(t, edit); });
  BootMenu before = parse_grub_legacy(in), after = parse_grub_legacy(out);
  if (before.entries.size() != after.entries.size()) violated("grub legacy entries kept", in, out);
  if (!before.entries.empty()) {
    int idx = static_cast<int>(size % before.entries.size());
    check_idempotent("grub legacy default idempotent", in, [&](std::string_view t) { return set_grub_legacy_default(t, idx); });
    BootMenu d = parse_grub_legacy(set_grub_legacy_default(in, idx));
    if (d.entries.size() != before.entries.size()) violated("grub legacy default keeps entries", in, "");
  }
  return 0;
}
