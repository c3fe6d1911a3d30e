// /etc/fstab and /etc/crypttab: one device field per entry, everything else kept as written.
#include "fixups/rules/fstab.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

namespace {
// Rewrites the device field `index` of fstab-like files.
std::string rewrite_device_field(std::string_view text, const DeviceMapFn& map, size_t index) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto fs = fields(body);
    if (fs.size() <= index) return std::string(body);
    auto repl = map ? map(fs[index].text) : std::nullopt;
    if (!repl || *repl == fs[index].text) return std::string(body);
    std::string nb(body);
    nb.replace(fs[index].pos, fs[index].text.size(), *repl);
    return nb;
  });
}
}  // namespace

std::string rewrite_fstab(std::string_view text, const DeviceMapFn& map) { return rewrite_device_field(text, map, 0); }
std::string rewrite_crypttab(std::string_view text, const DeviceMapFn& map) {
  return rewrite_device_field(text, map, 1);
}

std::vector<FstabEntry> parse_fstab(std::string_view text) {
  std::vector<FstabEntry> out;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    auto fs = fields(body);
    if (fs.size() < 2) continue;
    FstabEntry e;
    e.device = fs[0].text;
    e.mount_point = fs[1].text;
    if (fs.size() > 2) e.type = fs[2].text;
    if (fs.size() > 3) e.options = fs[3].text;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace vdkit::fixups
