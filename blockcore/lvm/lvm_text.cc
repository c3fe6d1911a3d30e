// A recursive-descent parser for LVM2's text metadata, bounded in depth, item count and string size.
#include "blockcore/lvm/lvm_text.h"

#include <cctype>
#include <limits>

namespace vdkit::lvm {

const TextValue* TextSection::find(std::string_view key) const {
  for (const auto& [k, v] : values)
    if (k == key) return &v;
  return nullptr;
}

const TextSection* TextSection::section(std::string_view n) const {
  for (const auto& s : sections)
    if (s.name == n) return &s;
  return nullptr;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Status parse_body(TextSection& into, int depth, bool top) {
    if (depth > kMaxSectionDepth) return error("sections nest deeper than " + std::to_string(kMaxSectionDepth));
    for (;;) {
      skip_space();
      if (at_end()) {
        if (top) return Status::Ok();
        return error("section '" + into.name + "' is not closed with '}'");
      }
      if (t_[p_] == '}') {
        if (top) return error("'}' without a section to close");
        ++p_;
        return Status::Ok();
      }
      std::string key;
      VDKIT_RETURN_IF_ERROR(identifier(key));
      skip_space();
      if (at_end()) return error("expected '=' or '{' after '" + key + "'");
      if (t_[p_] == '{') {
        ++p_;
        TextSection sub;
        sub.name = key;
        VDKIT_RETURN_IF_ERROR(parse_body(sub, depth + 1, false));
        into.sections.push_back(std::move(sub));
      } else if (t_[p_] == '=') {
        ++p_;
        skip_space();
        TextValue v;
        VDKIT_RETURN_IF_ERROR(value(v, true, key));
        into.values.emplace_back(std::move(key), std::move(v));
      } else {
        return error("expected '=' or '{' after '" + key + "'");
      }
    }
  }

 private:
  bool at_end() const { return p_ >= t_.size() || t_[p_] == '\0'; }

  Status error(const std::string& what) const {
    size_t line = 1;
    for (size_t i = 0; i < p_ && i < t_.size(); ++i) line += t_[i] == '\n';
    return Status::Corrupt("metadata text line " + std::to_string(line) + ": " + what);
  }

  // White space and `#` comments up to the end of their line.
  void skip_space() {
    while (!at_end()) {
      char c = t_[p_];
      if (c == '#') {
        while (!at_end() && t_[p_] != '\n') ++p_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++p_;
      } else {
        return;
      }
    }
  }

  static bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '+' || c == '/' ||
           c == '@';
  }

  Status identifier(std::string& out) {
    size_t start = p_;
    while (!at_end() && ident_char(t_[p_])) ++p_;
    if (p_ == start) return error(std::string("unexpected character '") + printable(t_[p_]) + "'");
    if (p_ - start > kMaxStringBytes) return error("a name is longer than " + std::to_string(kMaxStringBytes));
    out.assign(t_.substr(start, p_ - start));
    return Status::Ok();
  }

  static std::string printable(char c) {
    if (std::isprint(static_cast<unsigned char>(c))) return std::string(1, c);
    return "\\x" + std::string(1, "0123456789abcdef"[(c >> 4) & 15]) + "0123456789abcdef"[c & 15];
  }

  Status value(TextValue& v, bool allow_array, const std::string& key) {
    if (at_end()) return error("'" + key + "' has no value");
    char c = t_[p_];
    if (c == '[' && allow_array) {
      ++p_;
      v.kind = TextValue::Kind::kArray;
      for (;;) {
        skip_space();
        if (at_end()) return error("array of '" + key + "' is not closed with ']'");
        if (t_[p_] == ']') {
          ++p_;
          return Status::Ok();
        }
        if (!v.items.empty()) {
          if (t_[p_] != ',') return error("expected ',' or ']' in the array of '" + key + "'");
          ++p_;
          skip_space();
        }
        if (v.items.size() >= kMaxArrayItems)
          return error("array of '" + key + "' has more than " + std::to_string(kMaxArrayItems) + " items");
        TextValue item;
        VDKIT_RETURN_IF_ERROR(value(item, false, key));
        v.items.push_back(std::move(item));
      }
    }
    if (c == '"') {
      v.kind = TextValue::Kind::kString;
      return string(v.s, key);
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return integer(v, key);
    return error("'" + key + "' has a value that is not a string, integer or array");
  }

  // A quoted string; `\` escapes the next character (lvm2 escapes `"` and `\`).
  Status string(std::string& out, const std::string& key) {
    ++p_;
    for (;;) {
      if (at_end()) return error("string of '" + key + "' is not closed");
      char c = t_[p_++];
      if (c == '"') return Status::Ok();
      if (c == '\\') {
        if (at_end()) return error("string of '" + key + "' ends in a lone '\\'");
        c = t_[p_++];
      }
      if (out.size() >= kMaxStringBytes)
        return error("string of '" + key + "' is longer than " + std::to_string(kMaxStringBytes));
      out.push_back(c);
    }
  }

  Status integer(TextValue& v, const std::string& key) {
    bool neg = t_[p_] == '-';
    if (neg) ++p_;
    if (at_end() || !std::isdigit(static_cast<unsigned char>(t_[p_])))
      return error("'" + key + "' has a '-' that starts no number");
    uint64_t mag = 0;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(t_[p_]))) {
      unsigned d = static_cast<unsigned>(t_[p_++] - '0');
      if (mag > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
        return error("'" + key + "' is too large for a 64-bit integer");
      mag = mag * 10 + d;
    }
    // lvm2 writes floats only in its configuration files, never in VG metadata.
    if (!at_end() && t_[p_] == '.') return error("'" + key + "' is a floating-point number");
    v.kind = TextValue::Kind::kInt;
    v.i = neg ? -static_cast<int64_t>(mag) : static_cast<int64_t>(mag);
    return Status::Ok();
  }

  std::string_view t_;
  size_t p_ = 0;
};

}  // namespace

Result<TextSection> parse_text(std::string_view text) {
  if (text.size() > kMaxTextBytes)
    return Status::Corrupt("metadata text of " + std::to_string(text.size()) + " bytes is over the limit of " +
                           std::to_string(kMaxTextBytes));
  TextSection top;
  Parser p(text);
  VDKIT_RETURN_IF_ERROR(p.parse_body(top, 0, true));
  return top;
}

}  // namespace vdkit::lvm
