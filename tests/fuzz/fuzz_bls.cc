// Fuzzes the BLS entry parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/bls.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/rpm_version.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

namespace {
int sign(int v) { return (v > 0) - (v < 0); }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  std::string out = check_idempotent("BLS idempotent", in, [&](std::string_view t) { return rewrite_bls_entry(t, edit); });
  BootEntry a = parse_bls_entry(in), b = parse_bls_entry(out);
  if (a.kernel != b.kernel || a.initrd != b.initrd || a.version != b.version)
    violated("BLS kernel, initrd and version kept", in, out);
  // The version order blscfg sorts by is an order: antisymmetric, and equal only to what compares equal both ways.
  size_t half = in.size() / 2;
  std::string_view x = in.substr(0, half), y = in.substr(half);
  if (rpm_vercmp(x, x) != 0) violated("rpm_vercmp(x, x) == 0", in, std::string(x));
  if (sign(rpm_vercmp(x, y)) != -sign(rpm_vercmp(y, x))) violated("rpm_vercmp antisymmetric", in, std::string(y));
  // The default switch: saved_entry set to an entry id in the grubenv.
  if (auto env = set_grubenv_var(in, "saved_entry", a.version.empty() ? "m-4.18.0-147.el8.x86_64" : a.version)) {
    if (set_grubenv_var(*env, "saved_entry", grubenv_var(*env, "saved_entry").value_or("")) != *env)
      violated("saved_entry set twice is set once", in, *env);
  }
  return 0;
}
