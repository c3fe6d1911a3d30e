// Fuzzes the netplan YAML parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/netplan.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("netplan idempotent", in, [](std::string_view t) { return rewrite_netplan(t); });
  NetSummary a = summarize_netplan(in), b = summarize_netplan(out);
  // The rewrite re-parses: the same interfaces (in block or flow style, so no flow collection it edited was
  // broken), no static address left on any of them once it changed something, and no MAC it did not have.
  if (a.interfaces != b.interfaces) violated("netplan interfaces kept", in, out);
  if (out != in && b.is_static) violated("netplan static addresses dropped", in, out);
  if (b.macs.size() > a.macs.size()) violated("netplan adds no MAC", in, out);
  // With the glob for a lone predictable name: the same, and an interface it matched reads back as matched.
  std::string g = check_idempotent("netplan glob idempotent", in, [](std::string_view t) {
    return rewrite_netplan(t, "en*");
  });
  NetSummary c = summarize_netplan(g);
  if (a.interfaces != c.interfaces) violated("netplan glob: interfaces kept", in, g);
  if (g != in && c.is_static) violated("netplan glob: static addresses dropped", in, g);
  if (c.macs.size() > a.macs.size()) violated("netplan glob: adds no MAC", in, g);
  if (g != out && c.name_matched.empty()) violated("netplan glob: what it added reads back as a glob match", in, g);
  check_keeps_addressing("netplan keep idempotent", in, [](std::string_view t) { return rewrite_netplan(t, "en*", Addressing::kKeep); },
                         [](std::string_view t) { return summarize_netplan(t); });
  return 0;
}
