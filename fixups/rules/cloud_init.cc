// cloud-init cloud.cfg: datasource_list read from its one line, flow list or scalar.
#include "fixups/rules/cloud_init.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

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
