// /etc/network/interfaces: stanzas opened by iface/auto/mapping/source/allow-*, options indented under iface.
#include "fixups/rules/interfaces.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

namespace {
bool interfaces_top_keyword(std::string_view w) {
  return w == "iface" || w == "auto" || w == "mapping" || w == "source" || w == "source-directory" ||
         starts_with(w, "allow-") || w == "rename";
}
}  // namespace

NetSummary summarize_interfaces(std::string_view text) {
  NetSummary s;
  bool in_iface = false;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    auto fs = fields(body);
    std::string_view w = fs[0].text;
    if (interfaces_top_keyword(w)) {
      in_iface = w == "iface" && fs.size() >= 4 && fs[1].text != "lo";
      if (in_iface) {
        s.interfaces.emplace_back(fs[1].text);
        if (fs[3].text == "static") s.is_static = true;
        if (fs[3].text == "dhcp") s.dhcp = true;
      }
    } else if (in_iface && w == "hwaddress" && fs.size() >= 2) {
      s.macs.emplace_back(fs.back().text);
    }
  }
  return s;
}

std::string rewrite_interfaces(std::string_view text, Addressing addressing) {
  bool in_iface = false;
  bool was_static = false;
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto fs = fields(body);
    std::string_view w = fs[0].text;
    if (interfaces_top_keyword(w)) {
      in_iface = w == "iface" && fs.size() >= 4 && fs[1].text != "lo";
      was_static = in_iface && fs[2].text == "inet" && fs[3].text == "static" && addressing == Addressing::kToDhcp;
      if (was_static) {
        std::string nb(body);
        nb.replace(fs[3].pos, fs[3].text.size(), "dhcp");
        return nb;
      }
      return std::string(body);
    }
    if (!in_iface) return std::string(body);
    if (w == "hwaddress") return std::nullopt;
    if (was_static && (w == "address" || w == "netmask" || w == "gateway" || w == "network" || w == "broadcast" ||
                       w == "pointopoint"))
      return std::nullopt;
    return std::string(body);
  });
}

}  // namespace vdkit::fixups
