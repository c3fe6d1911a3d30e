// NetworkManager keyfiles: ini sections; [ethernet] holds the MAC, [ipv4] the method and addresses.
#include "fixups/rules/nm_keyfile.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

namespace {
std::string ini_section(std::string_view body) {
  std::string_view t = trim(body);
  if (t.size() >= 2 && t[0] == '[' && t.back() == ']') return std::string(t.substr(1, t.size() - 2));
  return {};
}
}  // namespace

NetSummary summarize_nm_keyfile(std::string_view text) {
  NetSummary s;
  std::string sec;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (auto n = ini_section(body); !n.empty()) {
      sec = n;
      continue;
    }
    std::string_view key = assignment_key(body);
    if (key.empty()) continue;
    std::string v(trim(trim(body).substr(trim(body).find('=') + 1)));
    if (sec == "connection" && key == "interface-name") s.interfaces.push_back(v);
    if ((sec == "ethernet" || sec == "802-3-ethernet") && key == "mac-address") s.macs.push_back(v);
    if (sec == "ipv4" && key == "method") {
      if (v == "manual") s.is_static = true;
      if (v == "auto") s.dhcp = true;
    }
  }
  return s;
}

std::string rewrite_nm_keyfile(std::string_view text, Addressing addressing) {
  NetSummary s = summarize_nm_keyfile(text);
  const bool to_dhcp = s.is_static && addressing == Addressing::kToDhcp;
  std::string sec;
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (auto n = ini_section(body); !n.empty()) {
      sec = n;
      return std::string(body);
    }
    std::string_view key = assignment_key(body);
    if (key.empty()) return std::string(body);
    if ((sec == "ethernet" || sec == "802-3-ethernet") && key == "mac-address") return std::nullopt;
    if (sec == "ipv4" && to_dhcp) {
      if (key == "method") return std::string(body.substr(0, body.find('=') + 1)) + "auto";
      if (key_is(key, "address") || key_is(key, "addresses") || key == "gateway") return std::nullopt;
    }
    return std::string(body);
  });
}

}  // namespace vdkit::fixups
