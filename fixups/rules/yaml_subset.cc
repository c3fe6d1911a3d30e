// The YAML subset netplan needs, read by lines: anything it does not understand is left for the caller to keep.
#include "fixups/rules/yaml_subset.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups::detail {

namespace {
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
}  // namespace

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

std::optional<Flow> line_flow(const YamlLine& y, bool* broken) {
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

bool yaml_true(const std::string& v) {
  std::string l = lower(v);
  return l == "true" || l == "yes" || l == "on" || l == "y";
}

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

std::string flow_item_with(std::string_view t, const Flow::Item& it, const std::string& value) {
  std::string_view prefix = t.substr(it.begin, it.value_begin - it.begin);
  if (prefix.empty() || (prefix.back() != ' ' && prefix.back() != '\t'))
    prefix = t.substr(it.begin, it.key_end - it.begin);
  else
    return std::string(prefix) + value;
  return std::string(prefix) + ": " + value;
}

std::string replace_span(std::string_view body, const Flow& inner, const std::string& text) {
  return std::string(body.substr(0, inner.begin)) + text + std::string(body.substr(inner.end));
}

}  // namespace vdkit::fixups::detail
