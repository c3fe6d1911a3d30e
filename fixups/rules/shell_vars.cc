// KEY=VALUE files in shell syntax: the last assignment wins, as when the shell sources them.
#include "fixups/rules/shell_vars.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

std::optional<std::string> shell_var(std::string_view text, std::string_view key) {
  std::optional<std::string> found;
  for (auto l : split_lines_keep(text)) {
    std::string_view t = trim(cut(l).body);
    if (starts_with(t, "export ")) t = trim(t.substr(7));
    if (!starts_with(t, key) || t.size() <= key.size() || t[key.size()] != '=') continue;
    std::string_view v = trim(t.substr(key.size() + 1));
    if (!v.empty() && (v[0] == '"' || v[0] == '\'')) {
      size_t e = v.find(v[0], 1);
      v = v.substr(1, e == std::string_view::npos ? std::string_view::npos : e - 1);
    } else {
      size_t h = v.find(" #");
      if (h != std::string_view::npos) v = trim(v.substr(0, h));
    }
    found = std::string(v);  // the last assignment wins, as in the shell
  }
  return found;
}

}  // namespace vdkit::fixups
