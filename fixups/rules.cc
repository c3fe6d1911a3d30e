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
}  // namespace

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

std::string rewrite_ifcfg(std::string_view text) {
  NetSummary s = summarize_ifcfg(text);
  bool saw_proto = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    std::string_view key = assignment_key(body);
    if (key.empty()) return std::string(body);
    if (key == "HWADDR" || key == "MACADDR" || key == "LLADDR") return std::nullopt;
    if (s.is_static) {
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
  if (s.is_static && !saw_proto) {
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

std::string rewrite_interfaces(std::string_view text) {
  bool in_iface = false;
  bool was_static = false;
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto fs = fields(body);
    std::string_view w = fs[0].text;
    if (interfaces_top_keyword(w)) {
      in_iface = w == "iface" && fs.size() >= 4 && fs[1].text != "lo";
      was_static = in_iface && fs[2].text == "inet" && fs[3].text == "static";
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

namespace {
// One netplan line: its indentation, key (before ':'), the value after it.
struct YamlLine {
  std::string_view body;
  int indent = -1;  // -1: blank or comment
  std::string key;
  std::string value;
  size_t value_pos = 0;  // where the value starts in body
  bool list_item = false;
};
YamlLine yaml_line(std::string_view body) {
  YamlLine y;
  y.body = body;
  size_t i = 0;
  while (i < body.size() && body[i] == ' ') ++i;
  std::string_view t = body.substr(i);
  if (trim(t).empty() || t[0] == '#') return y;
  y.indent = static_cast<int>(i);
  if (starts_with(t, "- ") || t == "-") {
    y.list_item = true;
    return y;
  }
  size_t colon = t.find(':');
  if (colon != std::string_view::npos && (colon + 1 == t.size() || is_blank(t[colon + 1]))) {
    y.key = unquote(t.substr(0, colon));
    y.value_pos = i + colon + 1;
    while (y.value_pos < body.size() && is_blank(body[y.value_pos])) ++y.value_pos;
    std::string_view v = trim(t.substr(colon + 1));
    size_t h = v.find(" #");
    if (h != std::string_view::npos) v = trim(v.substr(0, h));
    if (!v.empty() && v[0] == '#') v = {};
    y.value = std::string(v);
  }
  return y;
}

// A YAML flow node ({a: b, c: [d]}) written on one line, with where each part sits in that line.
struct Flow {
  enum Kind { kScalar, kMap, kSeq };
  struct Item {
    size_t begin = 0, end = 0;  // the item ("key: value", or a sequence value)
    size_t key_end = 0;         // where its key ends (== begin in a sequence)
    size_t value_begin = 0;     // where its value starts (== begin in a sequence)
    std::string key;
    std::shared_ptr<Flow> value;
  };
  Kind kind = kScalar;
  size_t begin = 0, end = 0;
  std::string scalar;  // kScalar: quotes removed
  std::vector<Item> items;
};
constexpr int kMaxFlowDepth = 32;

bool flow_indicator(char c) { return c == ',' || c == '{' || c == '}' || c == '[' || c == ']'; }
void skip_blanks(std::string_view t, size_t& i) {
  while (i < t.size() && is_blank(t[i])) ++i;
}

// A scalar: quoted ("..." with \ escapes, '...' with ''), or plain up to a flow indicator, ": " or " #".
std::optional<Flow> parse_flow_scalar(std::string_view t, size_t& i) {
  Flow f;
  f.begin = i;
  if (i < t.size() && (t[i] == '"' || t[i] == '\'')) {
    char q = t[i++];
    while (true) {
      if (i >= t.size()) return std::nullopt;
      if (t[i] == q) {
        if (q == '\'' && i + 1 < t.size() && t[i + 1] == '\'') {
          f.scalar += '\'';
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      if (q == '"' && t[i] == '\\' && i + 1 < t.size()) ++i;
      f.scalar += t[i++];
    }
  } else {
    size_t e = i;
    while (e < t.size() && !flow_indicator(t[e]) &&
           !(t[e] == ':' && (e + 1 == t.size() || is_blank(t[e + 1]) || flow_indicator(t[e + 1]))) &&
           !(t[e] == '#' && e > i && is_blank(t[e - 1])))
      ++e;
    f.scalar = std::string(trim(t.substr(i, e - i)));
    i = e;
    while (i > f.begin && is_blank(t[i - 1])) --i;
  }
  f.end = i;
  return f;
}

std::optional<Flow> parse_flow_node(std::string_view t, size_t& i, int depth) {
  skip_blanks(t, i);
  if (i >= t.size() || (t[i] != '{' && t[i] != '[')) return parse_flow_scalar(t, i);
  if (depth >= kMaxFlowDepth) return std::nullopt;
  Flow f;
  f.kind = t[i] == '{' ? Flow::kMap : Flow::kSeq;
  char close = t[i] == '{' ? '}' : ']';
  f.begin = i++;
  while (true) {
    skip_blanks(t, i);
    if (i >= t.size()) return std::nullopt;
    if (t[i] == close) break;
    Flow::Item item;
    item.begin = i;
    if (f.kind == Flow::kMap) {
      if (t[i] == '{' || t[i] == '[') return std::nullopt;  // complex keys: not netplan
      auto key = parse_flow_scalar(t, i);
      if (!key) return std::nullopt;
      item.key = key->scalar;
      item.key_end = key->end;
      skip_blanks(t, i);
      if (i < t.size() && t[i] == ':') {
        ++i;
        skip_blanks(t, i);
        item.value_begin = i;
        auto v = parse_flow_node(t, i, depth + 1);
        if (!v) return std::nullopt;
        item.value = std::make_shared<Flow>(std::move(*v));
      } else {
        item.value_begin = i;
        item.value = std::make_shared<Flow>();  // "{a, b}": null values
        item.value->begin = item.value->end = i;
      }
    } else {
      item.key_end = item.value_begin = i;
      auto v = parse_flow_node(t, i, depth + 1);
      if (!v) return std::nullopt;
      item.value = std::make_shared<Flow>(std::move(*v));
    }
    item.end = item.value->end > item.begin ? item.value->end : i;
    f.items.push_back(std::move(item));
    skip_blanks(t, i);
    if (i < t.size() && t[i] == ',') {
      ++i;
      continue;
    }
    if (i < t.size() && t[i] == close) break;
    return std::nullopt;
  }
  f.end = ++i;
  return f;
}

// The flow collection a line's value holds, when it is one; nullopt for a scalar or block value. `broken` is set
// when the value starts a flow collection that does not end on its line (flow over several lines, not handled).
std::optional<Flow> line_flow(const YamlLine& y, bool* broken = nullptr) {
  if (y.indent < 0 || y.key.empty() || y.value_pos >= y.body.size()) return std::nullopt;
  char c = y.body[y.value_pos];
  if (c != '{' && c != '[') return std::nullopt;
  size_t i = y.value_pos;
  auto f = parse_flow_node(y.body, i, 0);
  skip_blanks(y.body, i);
  if (!f || (i < y.body.size() && y.body[i] != '#')) {
    if (broken) *broken = true;
    return std::nullopt;
  }
  return f;
}

const Flow* flow_get(const Flow& map, std::string_view key) {
  if (map.kind != Flow::kMap) return nullptr;
  for (const auto& it : map.items)
    if (it.key == key) return it.value.get();
  return nullptr;
}

// Index one past the last line of the block that line k opens (its deeper-indented children).
size_t yaml_block_end(const std::vector<YamlLine>& ys, size_t k) {
  size_t e = k + 1;
  size_t last = k + 1;
  while (e < ys.size()) {
    if (ys[e].indent >= 0) {
      if (ys[e].indent <= ys[k].indent && !(ys[e].list_item && ys[e].indent == ys[k].indent)) break;
      last = e + 1;
    }
    ++e;
  }
  return last;
}
// Where network.ethernets is: a block line (its children are the interfaces), a flow map on that line, or a flow
// map inside a flow network map (`network: {ethernets: {...}}`).
struct NetplanEthernets {
  size_t line = 0;
  const Flow* flow = nullptr;  // the ethernets map, when written in flow style
};
// The lines of network.ethernets, and the flow maps parsed from them (kept alive for the pointers above).
std::vector<NetplanEthernets> netplan_ethernets(const std::vector<YamlLine>& ys, std::vector<Flow>& flows) {
  std::vector<NetplanEthernets> out;
  flows.reserve(ys.size());  // pointers into flows stay valid
  for (size_t k = 0; k < ys.size(); ++k) {
    if (ys[k].indent == 0 && ys[k].key == "network" && !ys[k].list_item) {
      if (auto f = line_flow(ys[k]); f && f->kind == Flow::kMap) {
        flows.push_back(std::move(*f));
        if (const Flow* e = flow_get(flows.back(), "ethernets"); e && e->kind == Flow::kMap) out.push_back({k, e});
      }
      continue;
    }
    if (ys[k].indent < 0 || ys[k].key != "ethernets") continue;
    // Only network.ethernets: an "ethernets" key nested anywhere else (inside an interface, say) is data, and
    // treating it as a block of interfaces would let one interface's edits cut into another's.
    size_t parent = k;
    while (parent > 0) {
      --parent;
      if (ys[parent].indent >= 0 && ys[parent].indent < ys[k].indent) break;
    }
    if (parent == k || ys[parent].indent != 0 || ys[parent].key != "network" || ys[parent].list_item) continue;
    if (auto f = line_flow(ys[k]); f && f->kind == Flow::kMap) {
      flows.push_back(std::move(*f));
      out.push_back({k, &flows.back()});
    } else {
      out.push_back({k, nullptr});
    }
  }
  return out;
}
// The interface blocks: block children of network.ethernets.
std::vector<size_t> netplan_interfaces(const std::vector<YamlLine>& ys) {
  std::vector<size_t> out;
  std::vector<Flow> flows;
  for (const auto& eth : netplan_ethernets(ys, flows)) {
    if (eth.flow) continue;
    size_t k = eth.line;
    size_t end = yaml_block_end(ys, k);
    int child = -1;
    for (size_t j = k + 1; j < end; ++j) {
      if (ys[j].indent < 0) continue;
      if (child < 0) child = ys[j].indent;
      if (ys[j].indent == child && !ys[j].key.empty()) out.push_back(j);
    }
  }
  return out;
}
bool yaml_true(const std::string& v) {
  std::string l = lower(v);
  return l == "true" || l == "yes" || l == "on" || l == "y";
}

// What an interface written (in part) in flow style says: its own keys (addresses: static), and every
// macaddress and dhcp4/dhcp6 anywhere below it.
void summarize_flow(const Flow& f, bool top, NetSummary& s) {
  for (const auto& it : f.items) {
    const Flow& v = *it.value;
    if (f.kind == Flow::kMap) {
      if (it.key == "macaddress" && v.kind == Flow::kScalar) s.macs.push_back(v.scalar);
      if ((it.key == "dhcp4" || it.key == "dhcp6") && v.kind == Flow::kScalar && yaml_true(v.scalar)) s.dhcp = true;
      if (top && it.key == "addresses") s.is_static = true;
      if (top && it.key == "set-name" && v.kind == Flow::kScalar) s.names.push_back(v.scalar);
    }
    summarize_flow(v, false, s);
  }
}
}  // namespace

namespace {
// A name glob (fnmatch, as networkd matches) that takes the virtio NIC whichever way KVM names it: "en*" does,
// "ens19*" and "ens*" (not enp1s0 on q35) do not; nor does a plain name.
bool takes_virtio_nic(const std::string& v) {
  return fnmatch(v.c_str(), "ens3", 0) == 0 && fnmatch(v.c_str(), "enp1s0", 0) == 0;
}
// A match written in flow style ({name: "en*", ...}) whose name takes the virtio NIC.
bool flow_match_takes_virtio_nic(const Flow& match) {
  if (match.kind != Flow::kMap) return false;
  for (const auto& m : match.items)
    if (m.key == "name" && m.value->kind == Flow::kScalar && takes_virtio_nic(m.value->scalar)) return true;
  return false;
}
// An interface in flow style ({match: {name: "en*"}, ...}) with such a match.
bool flow_name_glob(const Flow& f) {
  if (f.kind != Flow::kMap) return false;
  for (const auto& it : f.items)
    if (it.key == "match" && flow_match_takes_virtio_nic(*it.value)) return true;
  return false;
}
}  // namespace

NetSummary summarize_netplan(std::string_view text) {
  NetSummary s;
  std::vector<YamlLine> ys;
  for (auto l : split_lines_keep(text)) ys.push_back(yaml_line(cut(l).body));
  for (const auto& y : ys) {
    if (y.indent < 0) continue;
    std::string b = lower(std::string(y.body));
    // Block or flow style, anywhere (network-wide or per interface): erring towards yes only withholds the glob.
    if (b.find("renderer") != std::string::npos && b.find("networkmanager") != std::string::npos) s.nm_renderer = true;
  }
  std::vector<Flow> flows;
  for (const auto& eth : netplan_ethernets(ys, flows)) {
    if (!eth.flow) continue;
    for (const auto& it : eth.flow->items) {
      s.interfaces.push_back(it.key);
      summarize_flow(*it.value, true, s);
      if (flow_name_glob(*it.value)) s.name_matched.push_back(it.key);
    }
  }
  for (size_t k : netplan_interfaces(ys)) {
    s.interfaces.push_back(ys[k].key);
    // A flow value is the whole interface: deeper lines after it are not its (YAML allows no both).
    if (auto f = line_flow(ys[k])) {
      summarize_flow(*f, true, s);
      if (flow_name_glob(*f)) s.name_matched.push_back(ys[k].key);
      continue;
    }
    size_t end = yaml_block_end(ys, k);
    int child = -1;
    for (size_t j = k + 1; j < end; ++j) {
      if (ys[j].indent < 0) continue;
      if (child < 0) child = ys[j].indent;
      if (ys[j].key == "macaddress") s.macs.push_back(unquote(ys[j].value));
      if ((ys[j].key == "dhcp4" || ys[j].key == "dhcp6") && yaml_true(ys[j].value)) s.dhcp = true;
      // Only the interface's own addresses: nameservers' addresses say nothing about how it gets its own.
      if (ys[j].key == "addresses" && ys[j].indent == child) s.is_static = true;
      if (ys[j].key == "set-name" && ys[j].indent == child) s.names.push_back(unquote(ys[j].value));
      if (ys[j].key == "match" && ys[j].indent == child) {
        // Only a glob matches a NIC whatever KVM calls it; name: ens192 is as tied to the old layout as the key.
        bool named = false;
        for (size_t m = j + 1; m < yaml_block_end(ys, j); ++m)
          named |= ys[m].indent > child && ys[m].key == "name" && takes_virtio_nic(unquote(ys[m].value));
        if (auto f = line_flow(ys[j])) named |= flow_match_takes_virtio_nic(*f);
        if (named) s.name_matched.push_back(ys[k].key);
      }
      if (auto f = line_flow(ys[j])) {
        NetSummary inner;
        summarize_flow(*f, false, inner);
        s.macs.insert(s.macs.end(), inner.macs.begin(), inner.macs.end());
        s.dhcp |= inner.dhcp;
      }
    }
  }
  return s;
}

namespace {
// Rebuilds a flow collection from its items: nullopt drops an item, a string replaces it; `added` items go at
// the end. Separators and spacing of what stays are the user's.
std::string rebuild_flow(std::string_view t, const Flow& f, const std::vector<std::optional<std::string>>& items,
                         const std::vector<std::string>& added) {
  size_t n = f.items.size();
  std::string lead(n ? t.substr(f.begin + 1, f.items[0].begin - f.begin - 1) : std::string_view());
  std::string trail(n ? t.substr(f.items[n - 1].end, f.end - 1 - f.items[n - 1].end) : std::string_view());
  auto sep_after = [&](size_t k) {
    return std::string(t.substr(f.items[k].end, f.items[k + 1].begin - f.items[k].end));
  };
  std::string body;
  size_t last = n;  // index of the last item written
  for (size_t k = 0; k < n; ++k) {
    if (!items[k]) continue;
    if (last != n) body += sep_after(last);
    body += *items[k];
    last = k;
  }
  for (const auto& a : added) {
    if (!body.empty()) body += n > 1 ? sep_after(0) : std::string(", ");
    body += a;
  }
  char open = f.kind == Flow::kMap ? '{' : '[', close = f.kind == Flow::kMap ? '}' : ']';
  if (body.empty()) return std::string(1, open) + close;
  return open + lead + body + trail + close;
}

std::string flow_text(std::string_view t, const Flow& f) { return std::string(t.substr(f.begin, f.end - f.begin)); }
std::string flow_item_text(std::string_view t, const Flow::Item& it) {
  return std::string(t.substr(it.begin, it.end - it.begin));
}
// The item with a new value text ("key: value"; the user's spacing when the item had a value after ": ").
std::string flow_item_with(std::string_view t, const Flow::Item& it, const std::string& value) {
  std::string_view prefix = t.substr(it.begin, it.value_begin - it.begin);
  if (prefix.empty() || (prefix.back() != ' ' && prefix.back() != '\t'))
    prefix = t.substr(it.begin, it.key_end - it.begin);
  else
    return std::string(prefix) + value;
  return std::string(prefix) + ": " + value;
}

// A match map without its macaddress (and source NIC driver); nullopt when it held neither. `emptied`: they were
// all it held.
// A netplan match on the source hypervisor's NIC driver (udev's ID_NET_DRIVER: "vif" for Xen's netfront,
// vmxnet3 on VMware) matches nothing once the NIC is virtio_net, exactly like the old MAC: it goes the same way.
bool source_nic_driver(std::string_view d) {
  return d == "vif" || d == "xen_netfront" || d == "xen-netfront" || d == "vmxnet3" || d == "vmxnet";
}
bool source_match_item(const Flow::Item& it) {
  return it.key == "macaddress" ||
         (it.key == "driver" && it.value && it.value->kind == Flow::kScalar && source_nic_driver(it.value->scalar));
}

std::optional<std::string> rewrite_flow_match(std::string_view t, const Flow& match, bool* emptied) {
  std::vector<std::optional<std::string>> items;
  bool had_mac = false, others = false;
  for (const auto& it : match.items) {
    if (source_match_item(it)) {
      had_mac = true;
      items.push_back(std::nullopt);
    } else {
      others = true;
      items.push_back(flow_item_text(t, it));
    }
  }
  if (!had_mac) return std::nullopt;
  *emptied = !others;
  return rebuild_flow(t, match, items, {});
}

// An interface written as a flow map, with the block rewrite's edits: the MAC match (and a set-name that needed
// it) and macaddress go; static addresses, gateway4 and routes go, and dhcp4 becomes true.
std::string rewrite_flow_interface(std::string_view t, const Flow& iface) {
  if (iface.kind != Flow::kMap) return flow_text(t, iface);
  std::vector<std::optional<std::string>> items;
  bool has_addresses = false, has_dhcp4 = false, match_dropped = false;
  size_t set_name = iface.items.size();
  for (size_t k = 0; k < iface.items.size(); ++k) {
    const auto& it = iface.items[k];
    items.push_back(flow_item_text(t, it));
    if (it.key == "match" && it.value->kind == Flow::kMap) {
      bool emptied = false;
      if (auto m = rewrite_flow_match(t, *it.value, &emptied)) {
        items[k] = emptied ? std::nullopt : std::optional<std::string>(flow_item_with(t, it, *m));
        match_dropped |= emptied;
      }
    } else if (it.key == "macaddress") {
      items[k] = std::nullopt;
    } else if (it.key == "set-name") {
      set_name = k;
    } else if (it.key == "addresses" || it.key == "gateway4" || it.key == "routes") {
      has_addresses |= it.key == "addresses";
      items[k] = std::nullopt;
    } else if (it.key == "dhcp4") {
      has_dhcp4 = true;
    }
  }
  if (match_dropped && set_name < items.size()) items[set_name] = std::nullopt;
  std::vector<std::string> added;
  if (has_addresses) {
    for (size_t k = 0; k < iface.items.size(); ++k) {
      const auto& it = iface.items[k];
      if (it.key == "dhcp4" && !(it.value->kind == Flow::kScalar && yaml_true(it.value->scalar)))
        items[k] = flow_item_with(t, it, "true");
    }
    if (!has_dhcp4) added.push_back("dhcp4: true");
  }
  return rebuild_flow(t, iface, items, added);
}

// network.ethernets as a flow map: each interface rewritten.
std::string rewrite_flow_ethernets(std::string_view t, const Flow& eth) {
  std::vector<std::optional<std::string>> items;
  for (const auto& it : eth.items) {
    std::string iface = rewrite_flow_interface(t, *it.value);
    items.push_back(iface == flow_text(t, *it.value) ? flow_item_text(t, it) : flow_item_with(t, it, iface));
  }
  return rebuild_flow(t, eth, items, {});
}

// The line with the flow node `inner` (somewhere in it) replaced by `text`.
std::string replace_span(std::string_view body, const Flow& inner, const std::string& text) {
  return std::string(body.substr(0, inner.begin)) + text + std::string(body.substr(inner.end));
}

std::string rewrite_netplan_once(std::string_view text, const std::string& name_glob) {
  auto lines = split_lines_keep(text);
  std::vector<YamlLine> ys;
  for (auto l : lines) ys.push_back(yaml_line(cut(l).body));
  std::vector<bool> drop(ys.size(), false);
  std::vector<std::string> replace(ys.size());
  std::vector<std::pair<size_t, std::string>> inserts;  // after line index, new line
  std::vector<Flow> flows;
  for (const auto& eth : netplan_ethernets(ys, flows)) {
    if (!eth.flow) continue;
    std::string_view body = ys[eth.line].body;
    std::string next = replace_span(body, *eth.flow, rewrite_flow_ethernets(body, *eth.flow));
    if (next != body) replace[eth.line] = next;
  }
  // The one ethernet the file configures, when there is exactly one (flow-style ethernets count too).
  std::vector<size_t> ifaces = netplan_interfaces(ys);
  size_t in_flow = 0;
  for (const auto& eth : netplan_ethernets(ys, flows))
    if (eth.flow) in_flow += eth.flow->items.size();
  const bool only_one = ifaces.size() == 1 && in_flow == 0;
  for (size_t k : ifaces) {
    if (auto f = line_flow(ys[k])) {
      std::string_view body = ys[k].body;
      std::string next = replace_span(body, *f, rewrite_flow_interface(body, *f));
      if (next != body) replace[k] = next;
      continue;
    }
    size_t end = yaml_block_end(ys, k);
    int child = -1;
    for (size_t j = k + 1; j < end; ++j)
      if (ys[j].indent >= 0) {
        child = ys[j].indent;
        break;
      }
    if (child < 0) continue;
    bool has_addresses = false, has_dhcp4 = false, match_dropped = false;
    size_t set_name = 0, match_line = 0, mac_line = 0;
    for (size_t j = k + 1; j < end; ++j) {
      if (ys[j].indent != child) continue;
      const std::string& key = ys[j].key;
      size_t bend = yaml_block_end(ys, j);
      if (key == "match") {
        // Drop the MAC from the match; a match left empty goes, with its set-name.
        bool others = false, had_mac = false;
        for (size_t m = j + 1; m < bend; ++m) {
          if (ys[m].indent < 0) continue;
          if ((ys[m].key == "macaddress" || (ys[m].key == "driver" && source_nic_driver(unquote(ys[m].value)))) &&
              ys[m].indent > child) {
            for (size_t q = m; q < yaml_block_end(ys, m); ++q) drop[q] = true;
            if (!had_mac) mac_line = m;  // (or the source driver's)
            had_mac = true;
          } else if (!drop[m]) {
            others = true;
          }
        }
        bool inline_value = !ys[j].value.empty();
        if (auto f = line_flow(ys[j]); f && f->kind == Flow::kMap && bend == j + 1) {
          // match: {macaddress: ..., name: ...}
          bool emptied = false;
          if (auto m = rewrite_flow_match(ys[j].body, *f, &emptied)) {
            had_mac = true;
            others = !emptied;
            inline_value = false;
            if (!emptied) replace[j] = replace_span(ys[j].body, *f, *m);
          }
        }
        // Only a match this rewrite emptied goes; one that was already empty is the guest's business.
        if (had_mac && !others && !inline_value) {
          for (size_t q = j; q < bend; ++q) drop[q] = true;
          match_dropped = true;
          if (mac_line) match_line = j;  // a block match, which the glob below can take over
        }
      } else if (key == "macaddress") {
        for (size_t q = j; q < bend; ++q) drop[q] = true;
      } else if (key == "set-name") {
        set_name = j;
      } else if (key == "addresses" || key == "gateway4" || key == "routes") {
        if (key == "addresses") has_addresses = true;
        for (size_t q = j; q < bend; ++q) drop[q] = true;
      } else if (key == "dhcp4") {
        has_dhcp4 = true;
      }
    }
    if (match_dropped && set_name) drop[set_name] = true;
    // A predictable name from the old hypervisor's PCI layout, now matched by nothing but its key: match the NIC
    // KVM will name by the glob instead (a set-name would not help: netplan renames by the kernel's name, eth0).
    const std::string& key = ys[k].key;
    // Only a plain block mapping under the key (no value on its line, children deeper than it and keyed).
    bool mapping = ys[k].value.empty() && child > ys[k].indent;
    for (size_t j = k + 1; j < end && mapping; ++j)
      if (ys[j].indent == child && (ys[j].key.empty() || ys[j].list_item)) mapping = false;
    if (!name_glob.empty() && only_one && mapping && key.size() > 2 && key.compare(0, 2, "en") == 0) {
      bool matched = false;
      for (size_t j = k + 1; j < end; ++j)
        if (ys[j].indent == child && ys[j].key == "match" && !drop[j]) matched = true;
      if (!matched && match_line) {
        // The match the MAC left: the glob takes the MAC's line.
        drop[match_line] = drop[mac_line] = false;
        replace[mac_line] = std::string(static_cast<size_t>(ys[mac_line].indent), ' ') + "name: \"" + name_glob + "\"";
      } else if (!matched) {
        std::string pad(static_cast<size_t>(child), ' ');
        std::string step(static_cast<size_t>(std::max(child - ys[k].indent, 2)), ' ');
        inserts.push_back({k, pad + "match:"});
        inserts.push_back({k, pad + step + "name: \"" + name_glob + "\""});
      }
      if (!matched && set_name) drop[set_name] = true;
    }
    if (has_addresses) {
      for (size_t j = k + 1; j < end; ++j) {
        if (ys[j].indent == child && ys[j].key == "dhcp4" && !yaml_true(ys[j].value)) {
          std::string_view b = ys[j].body;
          size_t colon = b.find(':');
          replace[j] = std::string(b.substr(0, colon + 1)) + " true";
        }
      }
      if (!has_dhcp4) inserts.push_back({k, std::string(static_cast<size_t>(child), ' ') + "dhcp4: true"});
    }
  }
  std::string out;
  for (size_t k = 0; k < lines.size(); ++k) {
    Line l = cut(lines[k]);
    if (!drop[k]) {
      out += replace[k].empty() ? std::string(l.body) : replace[k];
      out += l.eol;
    }
    for (auto& [after, text_line] : inserts) {
      if (after != k) continue;
      if (l.eol.empty()) out += "\n";
      out += text_line;
      out += l.eol.empty() ? std::string_view("\n") : l.eol;
    }
  }
  return out;
}
}  // namespace

// Removing a block can change how the lines after it nest (line-based YAML, not a parser), so one pass is not
// always stable on odd indentation. Apply the pass until it is, a few times at most; a file that never settles
// is left exactly as it was, which keeps the rewrite idempotent and never half-edits something not understood.
// So is a file with a flow collection ({...} or [...]) that does not end on its line: its continuation lines would
// read as keys of their own.
std::string rewrite_netplan(std::string_view text, const std::string& name_glob) {
  for (auto l : split_lines_keep(text)) {
    bool broken = false;
    (void)line_flow(yaml_line(cut(l).body), &broken);
    if (broken) return std::string(text);
  }
  constexpr int kMaxPasses = 8;
  std::string cur(text);
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    std::string next = rewrite_netplan_once(cur, name_glob);
    if (next == cur) return cur;
    cur = std::move(next);
  }
  return std::string(text);
}

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

std::string rewrite_nm_keyfile(std::string_view text) {
  NetSummary s = summarize_nm_keyfile(text);
  std::string sec;
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (auto n = ini_section(body); !n.empty()) {
      sec = n;
      return std::string(body);
    }
    std::string_view key = assignment_key(body);
    if (key.empty()) return std::string(body);
    if ((sec == "ethernet" || sec == "802-3-ethernet") && key == "mac-address") return std::nullopt;
    if (sec == "ipv4" && s.is_static) {
      if (key == "method") return std::string(body.substr(0, body.find('=') + 1)) + "auto";
      if (key_is(key, "address") || key_is(key, "addresses") || key == "gateway") return std::nullopt;
    }
    return std::string(body);
  });
}

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
