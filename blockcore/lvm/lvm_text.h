// The LVM2 text metadata format: sections, `key = value` (strings, integers, arrays of them), `#` comments.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::lvm {

// Bounds on untrusted metadata text, so a hostile area costs bounded memory and stack.
inline constexpr size_t kMaxTextBytes = 64u << 20;   // what one metadata copy may hold
inline constexpr int kMaxSectionDepth = 16;          // a VG nests 5 deep (vg/logical_volumes/lv/segment)
inline constexpr size_t kMaxArrayItems = 1u << 16;   // stripes of one segment, status flags
inline constexpr size_t kMaxStringBytes = 1u << 16;  // one quoted string

struct TextValue {
  enum class Kind { kInt, kString, kArray };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  std::string s;                 // kString (escapes resolved)
  std::vector<TextValue> items;  // kArray: kInt or kString items
};

// A section: `name { ... }`. Keys and subsections keep the order of the text.
struct TextSection {
  std::string name;
  std::vector<std::pair<std::string, TextValue>> values;
  std::vector<TextSection> sections;

  const TextValue* find(std::string_view key) const;
  const TextSection* section(std::string_view name) const;
};

// Parses a whole text (stops at the first NUL, as lvm2's buffers end in one).
// Errors name the line: "metadata text line 12: expected '=' or '{' after 'seqno'".
Result<TextSection> parse_text(std::string_view text);

}  // namespace vdkit::lvm
