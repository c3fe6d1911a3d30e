// Line primitives every config dialect shares: lines split with their terminators kept, so rewrites keep them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups {

// Splits text into lines, each keeping its terminator ("\n" or "\r\n" stays part of the line).
std::vector<std::string_view> split_lines_keep(std::string_view text);

// What the dialects under fixups/rules/ share, one copy each; not for use outside them.
namespace detail {

bool is_blank(char c);
bool is_space(char c);

// A line without its terminator, and the terminator.
struct Line {
  std::string_view body;
  std::string_view eol;
};
Line cut(std::string_view line);
std::string_view trim(std::string_view s);
std::string lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view p);

// The first blank-separated word of a line, and where it ends.
std::string_view first_word(std::string_view body, size_t* end = nullptr);
std::string rest_after_word(std::string_view body, size_t end);

// Blank-separated fields with their positions.
struct Field {
  size_t pos;
  std::string_view text;
};
std::vector<Field> fields(std::string_view body);
bool is_comment_or_blank(std::string_view body);
std::string unquote(std::string_view v);

// "IPADDR", "IPADDR0", "IPADDR1" (Red Hat) and "IPADDR_1", "IPADDR_x" (SUSE's suffixed addresses) all match
// base "IPADDR".
bool key_is(std::string_view key, std::string_view base);
std::string_view assignment_key(std::string_view body);

// Applies f to each line body; f returns the new body (or nullopt to drop the line).
template <typename F>
std::string map_lines(std::string_view text, F f) {
  std::string out;
  out.reserve(text.size());
  for (auto l : split_lines_keep(text)) {
    Line line = cut(l);
    std::optional<std::string> nb = f(line.body);
    if (!nb) continue;
    out += *nb;
    out += line.eol;
  }
  return out;
}

}  // namespace detail
}  // namespace vdkit::fixups
