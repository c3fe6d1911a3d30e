// Fuzzes the BLS entry parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  std::string out = check_idempotent("BLS idempotent", in, [&](std::string_view t) { return rewrite_bls_entry(t, edit); });
  BootEntry a = parse_bls_entry(in), b = parse_bls_entry(out);
  if (a.kernel != b.kernel || a.initrd != b.initrd) violated("BLS kernel and initrd kept", in, out);
  return 0;
}
