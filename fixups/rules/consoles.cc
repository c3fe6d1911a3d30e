// inittab and securetty: the gettys and logins Xen's console device had, moved to the serial port KVM gives.
#include "fixups/rules/consoles.h"

#include "fixups/rules/text.h"

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

}  // namespace vdkit::fixups
