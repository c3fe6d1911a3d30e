// ifcfg-* (shell assignments, Red Hat and SUSE spellings) and the route files of the same interfaces.
#include "fixups/rules/ifcfg.h"

#include <algorithm>

#include "fixups/rules/shell_vars.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

NetSummary summarize_ifcfg(std::string_view text) {
  NetSummary s;
  if (auto d = shell_var(text, "DEVICE")) s.interfaces.push_back(*d);
  if (auto n = shell_var(text, "NAME")) s.names.push_back(*n);
  std::string proto = lower(shell_var(text, "BOOTPROTO").value_or(""));
  bool has_ip = shell_var(text, "IPADDR").has_value() || shell_var(text, "IPADDR0").has_value();
  // SUSE also writes dhcp4, dhcp6 and dhcp+autoip.
  s.dhcp = starts_with(proto, "dhcp") || proto == "bootp";
  s.is_static = !s.dhcp && (proto == "static" || proto == "none" || proto.empty()) && has_ip;
  // LLADDR is SUSE's MACADDR.
  for (const char* k : {"HWADDR", "MACADDR", "LLADDR"})
    if (auto m = shell_var(text, k)) s.macs.push_back(*m);
  return s;
}

std::string rewrite_ifcfg(std::string_view text, Addressing addressing) {
  NetSummary s = summarize_ifcfg(text);
  const bool to_dhcp = s.is_static && addressing == Addressing::kToDhcp;
  bool saw_proto = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    std::string_view key = assignment_key(body);
    if (key.empty()) return std::string(body);
    if (key == "HWADDR" || key == "MACADDR" || key == "LLADDR") return std::nullopt;
    if (to_dhcp) {
      if (key == "BOOTPROTO") {
        saw_proto = true;
        size_t eq = body.find('=');
        // SUSE's BOOTPROTO='static' keeps its quotes.
        char q = eq + 1 < body.size() && (body[eq + 1] == '\'' || body[eq + 1] == '"') ? body[eq + 1] : 0;
        return std::string(body.substr(0, eq + 1)) + (q ? q + std::string("dhcp") + q : std::string("dhcp"));
      }
      for (const char* k : {"IPADDR", "NETMASK", "PREFIX", "PREFIXLEN", "GATEWAY", "NETWORK", "BROADCAST"})
        if (key_is(key, k)) return std::nullopt;
    }
    return std::string(body);
  });
  if (to_dhcp && !saw_proto) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += "BOOTPROTO=dhcp\n";
  }
  return out;
}

std::string comment_out_default_routes(std::string_view text, const std::vector<std::string>& ifaces) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto f = fields(body);
    std::string_view dest = f[0].text;
    bool ip_form = f.size() >= 2 && (f[1].text == "via" || f[1].text == "dev");
    bool deflt = dest == "default" || dest == "0.0.0.0/0" ||
                 (dest == "0.0.0.0" && !ip_form && f.size() >= 3 && f[2].text == "0.0.0.0");
    if (!deflt) return std::string(body);
    std::string_view dev;
    if (ip_form) {
      for (size_t k = 1; k + 1 < f.size(); ++k)
        if (f[k].text == "dev") dev = f[k + 1].text;
    } else if (f.size() >= 4) {
      dev = f[3].text;
    }
    if (!dev.empty() && dev != "-" && std::find(ifaces.begin(), ifaces.end(), dev) == ifaces.end())
      return std::string(body);
    return "# " + std::string(body);
  });
}

}  // namespace vdkit::fixups
