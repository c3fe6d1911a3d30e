// Fuzzes the fstab and crypttab parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/fstab.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("fstab idempotent", in, [](std::string_view t) { return rewrite_fstab(t, fuzz_map); });
  if (parse_fstab(out).size() != parse_fstab(in).size()) violated("fstab entries kept", in, out);
  check_idempotent("crypttab idempotent", in, [](std::string_view t) { return rewrite_crypttab(t, fuzz_map); });
  return 0;
}
