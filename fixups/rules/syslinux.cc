// syslinux / extlinux: case-insensitive keywords, LABEL blocks, the initrd also given as APPEND initrd=.
#include "fixups/rules/syslinux.h"

#include "fixups/rules/boot_lines.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

std::string rewrite_syslinux(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit, [](std::string_view w) { return lower(w) == "append"; },
      [](std::string_view, std::string_view args) { return args.find(" --- ") == std::string_view::npos; });
}

BootMenu parse_syslinux(std::string_view text) {
  BootMenu m;
  BootEntry* cur = nullptr;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    size_t end = 0;
    std::string w = lower(first_word(body, &end));
    std::string rest = rest_after_word(body, end);
    if (w == "default" && !cur) {
      m.default_value = rest;
    } else if (w == "label") {
      m.entries.push_back({});
      cur = &m.entries.back();
      cur->title = rest;
    } else if (cur && (w == "kernel" || w == "linux")) {
      cur->kernel = rest;
    } else if (cur && w == "initrd") {
      cur->initrd = rest;
    } else if (cur && w == "append") {
      cur->cmdline = rest;
      for (auto& f : fields(rest))
        if (starts_with(f.text, "initrd=")) cur->initrd = std::string(f.text.substr(7));
    }
  }
  for (size_t k = 0; k < m.entries.size(); ++k)
    if (m.entries[k].title == m.default_value) m.default_index = static_cast<int>(k);
  if (m.default_value.empty() && !m.entries.empty()) m.default_index = 0;
  return m;
}

std::string set_syslinux_default(std::string_view text, const std::string& label) {
  bool done = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    if (!done && lower(w) == "default") {
      done = true;
      if (trim(body.substr(end)) == label) return std::string(body);
      size_t k = end;
      while (k < body.size() && is_blank(body[k])) ++k;
      return std::string(body.substr(0, k == end ? end : k)) + (k == end ? " " : "") + label;
    }
    return std::string(body);
  });
  if (!done) out = "DEFAULT " + label + "\n" + out;
  return out;
}

}  // namespace vdkit::fixups
