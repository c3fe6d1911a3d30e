// netplan: network.ethernets in block or flow style, each interface edited where it is written.
#include "fixups/rules/netplan.h"

#include <fnmatch.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "fixups/rules/text.h"
#include "fixups/rules/yaml_subset.h"

namespace vdkit::fixups {
using namespace detail;

namespace {
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
// A netplan match on the source hypervisor's NIC driver (udev's ID_NET_DRIVER: "vif" for Xen's netfront,
// vmxnet3 on VMware) matches nothing once the NIC is virtio_net, exactly like the old MAC: it goes the same way.
bool source_nic_driver(std::string_view d) {
  return d == "vif" || d == "xen_netfront" || d == "xen-netfront" || d == "vmxnet3" || d == "vmxnet";
}
bool source_match_item(const Flow::Item& it) {
  return it.key == "macaddress" ||
         (it.key == "driver" && it.value && it.value->kind == Flow::kScalar && source_nic_driver(it.value->scalar));
}

// A match map without its macaddress (and source NIC driver); nullopt when it held neither. `emptied`: they were
// all it held.
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
std::string rewrite_flow_interface(std::string_view t, const Flow& iface, Addressing addressing) {
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
    } else if (addressing == Addressing::kToDhcp &&
               (it.key == "addresses" || it.key == "gateway4" || it.key == "routes")) {
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
std::string rewrite_flow_ethernets(std::string_view t, const Flow& eth, Addressing addressing) {
  std::vector<std::optional<std::string>> items;
  for (const auto& it : eth.items) {
    std::string iface = rewrite_flow_interface(t, *it.value, addressing);
    items.push_back(iface == flow_text(t, *it.value) ? flow_item_text(t, it) : flow_item_with(t, it, iface));
  }
  return rebuild_flow(t, eth, items, {});
}

std::string rewrite_netplan_once(std::string_view text, const std::string& name_glob, Addressing addressing) {
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
    std::string next = replace_span(body, *eth.flow, rewrite_flow_ethernets(body, *eth.flow, addressing));
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
      std::string next = replace_span(body, *f, rewrite_flow_interface(body, *f, addressing));
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
      } else if (addressing == Addressing::kToDhcp && (key == "addresses" || key == "gateway4" || key == "routes")) {
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
std::string rewrite_netplan(std::string_view text, const std::string& name_glob, Addressing addressing) {
  for (auto l : split_lines_keep(text)) {
    bool broken = false;
    (void)line_flow(yaml_line(cut(l).body), &broken);
    if (broken) return std::string(text);
  }
  constexpr int kMaxPasses = 8;
  std::string cur(text);
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    std::string next = rewrite_netplan_once(cur, name_glob, addressing);
    if (next == cur) return cur;
    cur = std::move(next);
  }
  return std::string(text);
}

}  // namespace vdkit::fixups
