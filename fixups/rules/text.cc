// Line primitives every config dialect shares: one copy of each, so every dialect cuts lines the same way.
#include "fixups/rules/text.h"

#include <cctype>

namespace vdkit::fixups {

std::vector<std::string_view> split_lines_keep(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find('\n', i);
    if (j == std::string_view::npos)
      j = text.size();
    else
      ++j;
    out.push_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

namespace detail {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

Line cut(std::string_view line) {
  size_t n = line.size();
  if (n && line[n - 1] == '\n') {
    size_t e = (n >= 2 && line[n - 2] == '\r') ? 2 : 1;
    return {line.substr(0, n - e), line.substr(n - e)};
  }
  return {line, {}};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string_view first_word(std::string_view body, size_t* end) {
  size_t i = 0;
  while (i < body.size() && is_blank(body[i])) ++i;
  size_t j = i;
  while (j < body.size() && !is_space(body[j])) ++j;
  if (end) *end = j;
  return body.substr(i, j - i);
}

std::string rest_after_word(std::string_view body, size_t end) { return std::string(trim(body.substr(end))); }

std::vector<Field> fields(std::string_view body) {
  std::vector<Field> out;
  size_t i = 0;
  while (i < body.size()) {
    while (i < body.size() && is_space(body[i])) ++i;
    if (i >= body.size()) break;
    size_t j = i;
    while (j < body.size() && !is_space(body[j])) ++j;
    out.push_back({i, body.substr(i, j - i)});
    i = j;
  }
  return out;
}

bool is_comment_or_blank(std::string_view body) {
  std::string_view t = trim(body);
  return t.empty() || t[0] == '#';
}

std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0]) return std::string(v.substr(1, v.size() - 2));
  return std::string(v);
}

bool key_is(std::string_view key, std::string_view base) {
  if (!starts_with(key, base)) return false;
  std::string_view suffix = key.substr(base.size());
  if (starts_with(suffix, "_")) return true;
  for (char c : suffix)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}
std::string_view assignment_key(std::string_view body) {
  std::string_view t = trim(body);
  if (t.empty() || t[0] == '#') return {};
  size_t eq = t.find('=');
  if (eq == std::string_view::npos) return {};
  return trim(t.substr(0, eq));
}

}  // namespace detail

}  // namespace vdkit::fixups
