// Fuzzes the ifcfg-* parser and rewriter of the fixups, and the route-file rewrite that goes with it: idempotence
// and structure kept (see fuzz_rewriter.h).
#include <vector>

#include "fixups/rules/ifcfg.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  std::string out = check_idempotent("ifcfg idempotent", in, [](std::string_view t) { return rewrite_ifcfg(t); });
  if (summarize_ifcfg(in).interfaces != summarize_ifcfg(out).interfaces) violated("ifcfg interfaces kept", in, out);
  // The same text as a route file: idempotent, and it only ever adds "# " before lines (nothing removed or edited).
  std::string r = check_idempotent("routes idempotent", in, [](std::string_view t) {
    return comment_out_default_routes(t, {"eth0"});
  });
  auto lines = [](std::string_view t) {
    std::vector<std::string_view> v;
    for (size_t i = 0; i < t.size();) {
      size_t nl = t.find('\n', i);
      size_t n = (nl == std::string_view::npos ? t.size() : nl + 1) - i;
      v.push_back(t.substr(i, n));
      i += n;
    }
    return v;
  };
  auto a = lines(in), b = lines(r);
  bool same_shape = a.size() == b.size();
  for (size_t k = 0; same_shape && k < a.size(); ++k)
    same_shape = b[k] == a[k] || (b[k].substr(0, 2) == "# " && b[k].substr(2) == a[k]);
  if (!same_shape) violated("routes only comment lines out", in, r);
  check_keeps_addressing("ifcfg keep idempotent", in, [](std::string_view t) { return rewrite_ifcfg(t, Addressing::kKeep); },
                         [](std::string_view t) { return summarize_ifcfg(t); });
  return 0;
}
