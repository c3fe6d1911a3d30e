// Fuzzes the /etc/network/interfaces parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/interfaces.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("interfaces idempotent", in, [](std::string_view t) { return rewrite_interfaces(t); });
  if (summarize_interfaces(in).interfaces != summarize_interfaces(out).interfaces) violated("interfaces kept", in, out);
  check_keeps_addressing("interfaces keep idempotent", in, [](std::string_view t) { return rewrite_interfaces(t, Addressing::kKeep); },
                         [](std::string_view t) { return summarize_interfaces(t); });
  return 0;
}
