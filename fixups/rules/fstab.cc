// /etc/fstab and /etc/crypttab: one device field per entry, everything else kept as written.
#include "fixups/rules/fstab.h"

#include <algorithm>

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

namespace {

constexpr size_t kTab = 8;

// The display column of byte `pos` of `body`, tabs moving to the next multiple of 8.
size_t column_of(std::string_view body, size_t pos) {
  size_t col = 0;
  for (size_t i = 0; i < pos && i < body.size(); ++i) col = body[i] == '\t' ? (col / kTab + 1) * kTab : col + 1;
  return col;
}

// How the entries lay out the field after the rewritten one: aligned when it starts at the same column on every
// entry line (two or more) and some line pads it (more than one blank, or tabs), with tabs when every separator
// before it is made of tabs only.
struct Layout {
  bool aligned = false;
  bool tabs = true;
  size_t column = 0;
  size_t min_gap = 1;  // the narrowest gap before the column, kept after a longer name (spaces only)
};

Layout layout_of(std::string_view text, size_t index) {
  Layout l;
  int lines = 0;
  bool padded = false;
  for (auto raw : split_lines_keep(text)) {
    std::string_view body = cut(raw).body;
    if (is_comment_or_blank(body)) continue;
    auto fs = fields(body);
    if (fs.size() <= index + 1) continue;
    const size_t end = fs[index].pos + fs[index].text.size();
    const size_t col = column_of(body, fs[index + 1].pos);
    if (lines++ == 0)
      l.column = col;
    else if (col != l.column)
      return {};
    const std::string_view sep = body.substr(end, fs[index + 1].pos - end);
    if (sep.find_first_not_of('\t') != std::string_view::npos) l.tabs = false;
    if (sep.size() > 1) padded = true;
    const size_t gap = col - column_of(body, end);
    l.min_gap = lines == 1 ? gap : std::min(l.min_gap, gap);
  }
  // Single spaces that happen to line up (names of one length) are not a layout to keep.
  l.aligned = lines >= 2 && (l.tabs || padded);
  return l;
}

// Puts the field after `index` back at one column on every entry line: the old column, or further right when a
// longer name needs it, reached with tabs or spaces as the file had them. Later fields move with it.
std::string realign(std::string_view text, size_t index, const Layout& l) {
  size_t target = l.column;
  for (auto raw : split_lines_keep(text)) {
    std::string_view body = cut(raw).body;
    auto fs = fields(body);
    if (is_comment_or_blank(body) || fs.size() <= index + 1) continue;
    const size_t end = column_of(body, fs[index].pos + fs[index].text.size());
    target = std::max(target, l.tabs ? (end / kTab + 1) * kTab : end + l.min_gap);
  }
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    auto fs = fields(body);
    if (is_comment_or_blank(body) || fs.size() <= index + 1) return std::string(body);
    const size_t end_byte = fs[index].pos + fs[index].text.size();
    size_t col = column_of(body, end_byte);
    std::string sep;
    while (col < target) {
      const size_t next = l.tabs ? (col / kTab + 1) * kTab : col + 1;
      sep += l.tabs ? '\t' : ' ';
      col = next;
    }
    return std::string(body.substr(0, end_byte)) + sep + std::string(body.substr(fs[index + 1].pos));
  });
}

// Rewrites the device field `index` of fstab-like files; columns that were aligned stay aligned.
std::string rewrite_device_field(std::string_view text, const DeviceMapFn& map, size_t index) {
  bool changed = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto fs = fields(body);
    if (fs.size() <= index) return std::string(body);
    auto repl = map ? map(fs[index].text) : std::nullopt;
    if (!repl || *repl == fs[index].text) return std::string(body);
    std::string nb(body);
    nb.replace(fs[index].pos, fs[index].text.size(), *repl);
    changed = true;
    return nb;
  });
  if (!changed) return out;
  const Layout before = layout_of(text, index);
  return before.aligned ? realign(out, index, before) : out;
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
