// Fuzzes the ifcfg-* parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("ifcfg idempotent", in, [](std::string_view t) { return rewrite_ifcfg(t); });
  if (summarize_ifcfg(in).interfaces != summarize_ifcfg(out).interfaces) violated("ifcfg interfaces kept", in, out);
  return 0;
}
