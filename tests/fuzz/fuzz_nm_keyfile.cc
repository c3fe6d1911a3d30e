// Fuzzes the NetworkManager keyfile parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/nm_keyfile.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("keyfile idempotent", in, [](std::string_view t) { return rewrite_nm_keyfile(t); });
  if (summarize_nm_keyfile(in).interfaces != summarize_nm_keyfile(out).interfaces) violated("keyfile interfaces kept", in, out);
  check_keeps_addressing("nm_keyfile keep idempotent", in, [](std::string_view t) { return rewrite_nm_keyfile(t, Addressing::kKeep); },
                         [](std::string_view t) { return summarize_nm_keyfile(t); });
  return 0;
}
