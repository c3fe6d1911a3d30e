// Config-file parsers and rewriters for the KVM fixups: line-oriented, careful to keep every byte they do not change.
#include "fixups/rules.h"
#include "fixups/rules/text.h"
#include "fixups/rules/boot_lines.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

namespace vdkit::fixups {
using namespace detail;

namespace {
bool is_xen_console(std::string_view w) { return w == "xvc0" || w == "hvc0"; }
}  // namespace

std::vector<std::string> inittab_getty_ttys(std::string_view text) {
  std::vector<std::string> out;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    size_t c3 = 0;
    for (int n = 0; n < 3 && c3 != std::string_view::npos; ++n) c3 = body.find(':', c3 ? c3 + 1 : 0);
    if (c3 == std::string_view::npos) continue;
    std::string_view proc = body.substr(c3 + 1);
    if (proc.find("getty") == std::string_view::npos) continue;
    auto fs = fields(proc);
    for (size_t k = 1; k < fs.size(); ++k) {
      std::string_view f = fs[k].text;
      if (starts_with(f, "tty") || is_xen_console(f) || starts_with(f, "console")) {
        out.emplace_back(f);
        break;
      }
    }
  }
  return out;
}

std::string rewrite_inittab(std::string_view text) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body) || body.find("getty") == std::string_view::npos) return std::string(body);
    size_t c3 = 0;
    for (int n = 0; n < 3 && c3 != std::string_view::npos; ++n) c3 = body.find(':', c3 ? c3 + 1 : 0);
    if (c3 == std::string_view::npos) return std::string(body);
    auto fs = fields(body.substr(c3 + 1));
    std::string nb(body);
    for (auto it = fs.rbegin(); it != fs.rend(); ++it)
      if (is_xen_console(it->text)) nb.replace(c3 + 1 + it->pos, it->text.size(), "ttyS0");
    return nb;
  });
}

std::string rewrite_securetty(std::string_view text) {
  for (auto l : split_lines_keep(text))
    if (trim(cut(l).body) == "ttyS0") return std::string(text);
  std::string out(text);
  if (!out.empty() && out.back() != '\n') out += "\n";
  return out + "ttyS0\n";
}

int count_udev_rules(std::string_view text) {
  int n = 0;
  for (auto l : split_lines_keep(text))
    if (!is_comment_or_blank(cut(l).body)) ++n;
  return n;
}

std::string rewrite_persistent_net_rules(std::string_view text) { return {}; }

std::vector<std::string> cloud_init_datasources(std::string_view text) {
  std::vector<std::string> out;
  for (auto l : split_lines_keep(text)) {
    std::string_view t = trim(cut(l).body);
    if (!starts_with(t, "datasource_list:")) continue;
    std::string_view v = t.substr(16);
    for (char c : std::string("[]"))
      if (auto p = v.find(c); p != std::string_view::npos) v = c == '[' ? v.substr(p + 1) : v.substr(0, p);
    size_t i = 0;
    while (i <= v.size()) {
      size_t j = v.find(',', i);
      if (j == std::string_view::npos) j = v.size();
      std::string item = unquote(trim(v.substr(i, j - i)));
      if (!item.empty()) out.push_back(item);
      i = j + 1;
    }
  }
  return out;
}

}  // namespace vdkit::fixups
