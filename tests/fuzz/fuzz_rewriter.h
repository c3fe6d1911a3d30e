// Properties every fixups rewriter must keep on any input: it terminates without UB, it is idempotent
// (rewrite(rewrite(x)) == rewrite(x)), and its output still parses to the same structure (same entries,
// same interfaces) as its input, so a rewrite never turns a valid file into one its own parser reads otherwise.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fixups/rules/cmdline.h"
#include "fixups/rules/device_names.h"
#include "fixups/rules/net_summary.h"

namespace vdkit::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

[[noreturn]] inline void violated(const char* what, std::string_view in, const std::string& out) {
  std::fprintf(stderr, "property violated: %s\n--- input (%zu bytes)\n%.*s\n--- output (%zu bytes)\n%s\n", what,
               in.size(), static_cast<int>(std::min<size_t>(in.size(), 2000)), in.data(), out.size(),
               out.substr(0, 2000).c_str());
  std::abort();
}

// Maps partition 1 of any Xen/SCSI/IDE disk to a UUID and disk b's partitions to LABELs, like a real mapping.
inline std::optional<std::string> fuzz_map(std::string_view dev) {
  auto d = fixups::parse_device_name(dev);
  if (!d || d->prefix == "vd") return std::nullopt;
  if (d->disk == 0) return "UUID=0d6c5e2a-1b9f-4c1e-9a51-" + std::to_string(100000000000 + d->partition);
  if (d->disk == 1) return "LABEL=data" + std::to_string(d->partition);
  return "/dev/vd" + fixups::disk_letters(d->disk) + (d->partition ? std::to_string(d->partition) : "");
}

inline fixups::CmdlineEdit fuzz_edit() {
  fixups::CmdlineEdit e;
  e.map = fuzz_map;
  e.fix_console = true;
  e.append = {"net.ifnames=0", "biosdevname=0"};
  return e;
}

// Checks idempotence of `rewrite` on `in`, returning the first rewrite.
template <typename F>
std::string check_idempotent(const char* name, std::string_view in, F rewrite) {
  std::string once = rewrite(in);
  std::string twice = rewrite(once);
  if (once != twice) violated(name, in, once);
  return once;
}

// A network rewrite with --network keep: idempotent, the same interfaces, no MAC it did not have, and a static
// config stays static (only what ties it to the old hardware may go).
template <typename Rewrite, typename Summarize>
void check_keeps_addressing(const char* name, std::string_view in, Rewrite rewrite, Summarize summarize) {
  std::string out = check_idempotent(name, in, rewrite);
  fixups::NetSummary a = summarize(in), b = summarize(out);
  if (a.interfaces != b.interfaces) violated("keep: interfaces kept", in, out);
  if (b.macs.size() > a.macs.size()) violated("keep: adds no MAC", in, out);
  if (a.is_static && !b.is_static) violated("keep: static stays static", in, out);
}

}  // namespace vdkit::fuzz
