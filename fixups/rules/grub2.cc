// grub2 grub.cfg: grub script read just far enough for menu entries, submenus and the top-level default.
#include "fixups/rules/grub2.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "fixups/rules/boot_lines.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

std::string rewrite_grub2_cfg(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit,
      [](std::string_view w) {
        return w == "linux" || w == "linux16" || w == "linuxefi" || w == "module" || w == "module2" ||
               w == "xen_module";
      },
      [](std::string_view w, std::string_view args) {
        return starts_with(w, "linux") || linux_module(args);
      });
}

namespace {
// grub script words: '...' literal, "..." with \\ \" \$ escapes, bare words with \x escapes. Variables stay as
// written ("${saved_entry}"). Stops at a bare '{' or ';', which end a menuentry header or a command.
std::vector<std::string> grub_words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i >= s.size() || s[i] == '{' || s[i] == ';' || s[i] == '#') break;
    std::string w;
    while (i < s.size() && !is_space(s[i]) && s[i] != ';') {
      char c = s[i];
      if (c == '\'') {
        size_t e = s.find('\'', i + 1);
        if (e == std::string_view::npos) e = s.size();
        w += s.substr(i + 1, e - i - 1);
        i = e + 1;
      } else if (c == '"') {
        ++i;
        while (i < s.size() && s[i] != '"') {
          if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == '$')) ++i;
          w += s[i++];
        }
        ++i;
      } else if (c == '\\' && i + 1 < s.size()) {
        w += s[i + 1];
        i += 2;
      } else {
        w += c;
        ++i;
      }
    }
    out.push_back(std::move(w));
  }
  return out;
}

// The title and id of a menuentry or submenu header (the words after the keyword).
MenuStep menu_header(std::string_view rest) {
  MenuStep step;
  auto words = grub_words(rest);
  if (words.empty()) return step;
  step.title = words[0];
  for (size_t k = 1; k < words.size(); ++k) {
    const std::string& w = words[k];
    if (starts_with(w, "--id=")) {
      step.id = w.substr(5);
    } else if ((w == "--id" || w == "$menuentry_id_option" || w == "${menuentry_id_option}") && k + 1 < words.size()) {
      step.id = words[++k];
    }
  }
  return step;
}

bool is_grub_var(std::string_view v, std::string_view name) {
  return v == "$" + std::string(name) || v == "${" + std::string(name) + "}";
}

// A top-level `set default=VALUE` line: where VALUE is written, and what it says.
struct Grub2DefaultLine {
  size_t value_pos = 0;
  size_t value_len = 0;
  std::string value;
};
// grub script also assigns without `set` (`default=1`), which hand-written grub.cfg files use.
std::optional<Grub2DefaultLine> grub2_default_line(std::string_view body) {
  size_t end = 0;
  std::string_view w = first_word(body, &end);
  size_t i = end;
  if (w == "set") {
    while (i < body.size() && is_blank(body[i])) ++i;
  } else if (starts_with(w, "default=")) {
    i = end - w.size();
  } else {
    return std::nullopt;
  }
  if (body.substr(i, 8) != "default=") return std::nullopt;
  Grub2DefaultLine d;
  d.value_pos = i + 8;
  // The value's extent as written: up to the first blank or ';' outside quotes.
  size_t j = d.value_pos;
  char q = 0;
  while (j < body.size() && (q || (!is_space(body[j]) && body[j] != ';'))) {
    if (q == '"' && body[j] == '\\' && j + 1 < body.size()) {
      j += 2;
      continue;
    }
    if (!q && body[j] == '\\' && j + 1 < body.size()) {
      j += 2;
      continue;
    }
    if (!q && (body[j] == '\'' || body[j] == '"'))
      q = body[j];
    else if (q && body[j] == q)
      q = 0;
    ++j;
  }
  d.value_len = j - d.value_pos;
  auto words = grub_words(body.substr(d.value_pos, d.value_len));
  d.value = words.empty() ? std::string() : words[0];
  return d;
}

// Calls f with each '{' and '}' of a grub.cfg line that opens or closes a block: not those quoted (a title, a
// default value) or in a comment.
template <typename F>
void for_each_brace(std::string_view body, F f) {
  char q = 0;
  bool word_start = true;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (q) {
      if (q == '"' && c == '\\')
        ++i;
      else if (c == q)
        q = 0;
    } else if (c == '\\') {
      ++i;
    } else if (c == '\'' || c == '"') {
      q = c;
    } else if (c == '#' && word_start) {
      return;
    } else if (c == '{' || c == '}') {
      f(c);
    }
    word_start = is_space(c) || c == ';';
  }
}

// parse_grub2_cfg, also listing the line numbers of the top-level `set default=` lines.
BootMenu parse_grub2(std::string_view text, std::vector<size_t>* default_lines) {
  BootMenu m;
  BootEntry* cur = nullptr;
  int depth_at_entry = -1;
  int depth = 0;
  struct Submenu {
    int depth;  // brace depth of its header line; open while depth is greater
    MenuStep step;
    int children = 0;
  };
  std::vector<Submenu> open;
  int top_children = 0;
  std::vector<MenuStep> prefix;
  auto next_step = [&](std::string_view rest) {
    MenuStep step = menu_header(rest);
    step.index = open.empty() ? top_children++ : open.back().children++;
    return step;
  };
  auto lines = split_lines_keep(text);
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view body = cut(lines[n]).body;
    if (is_comment_or_blank(body)) continue;
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    std::string rest = rest_after_word(body, end);
    if (depth == 0 && !cur && (w == "set" || starts_with(w, "default="))) {
      if (auto d = grub2_default_line(body); d && !is_grub_var(d->value, "next_entry")) {
        m.default_value = d->value;
        m.saved_default = is_grub_var(d->value, "saved_entry");
        if (default_lines) default_lines->push_back(n);
      }
    } else if (w == "submenu") {
      MenuStep step = next_step(rest);
      open.push_back({depth, step, 0});
    } else if (w == "menuentry") {
      m.entries.push_back({});
      cur = &m.entries.back();
      for (const auto& s : open) cur->menu_path.push_back(s.step);
      cur->menu_path.push_back(next_step(rest));
      cur->title = cur->menu_path.back().title;
      cur->id = cur->menu_path.back().id;
      depth_at_entry = depth;
    } else if (cur && (w == "linux" || w == "linux16" || w == "linuxefi")) {
      split_kernel_line(rest, cur->kernel, cur->cmdline);
    } else if (cur && (w == "initrd" || w == "initrd16" || w == "initrdefi")) {
      std::string a;
      split_kernel_line(rest, cur->initrd, a);
    } else if (cur && w == "multiboot") {
      std::string a;
      split_kernel_line(rest, cur->hypervisor, a);
    } else if (cur && (w == "module" || w == "xen_module") && cur->kernel.empty()) {
      split_kernel_line(rest, cur->kernel, cur->cmdline);
    }
    for_each_brace(body, [&](char c) {
      if (c == '{') ++depth;
      if (c == '}') {
        --depth;
        if (cur && depth <= depth_at_entry) cur = nullptr;
        while (!open.empty() && depth <= open.back().depth) open.pop_back();
      }
    });
  }
  m.default_index = m.saved_default ? -1 : resolve_grub2_default(m.entries, m.default_value);
  return m;
}

// Splits a grub default path on '>'; ">>" is a literal '>' (grub's menuentry_eq).
std::vector<std::string> split_grub2_path(std::string_view value) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '>') {
      parts.back() += value[i];
    } else if (i + 1 < value.size() && value[i + 1] == '>') {
      parts.back() += '>';
      ++i;
    } else {
      parts.emplace_back();
    }
  }
  return parts;
}

std::string escape_grub2_part(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == '>') out += '>';
  }
  return out;
}

bool path_has_prefix(const std::vector<MenuStep>& path, const std::vector<int>& prefix) {
  if (path.size() < prefix.size()) return false;
  for (size_t k = 0; k < prefix.size(); ++k)
    if (path[k].index != prefix[k]) return false;
  return true;
}

// Quotes a value for grub script (grub_words reads it back as value).
std::string grub_quote(std::string_view v) {
  if (v.find_first_of("\"$\\") == std::string_view::npos) return "\"" + std::string(v) + "\"";
  if (v.find('\'') == std::string_view::npos) return "'" + std::string(v) + "'";
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '$' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
}  // namespace

BootMenu parse_grub2_cfg(std::string_view text) { return parse_grub2(text, nullptr); }

int resolve_grub2_default(const std::vector<BootEntry>& entries, std::string_view value) {
  if (entries.empty()) return -1;
  std::vector<int> prefix;
  for (const std::string& part : split_grub2_path(value)) {
    size_t depth = prefix.size();
    bool deeper = false;  // prefix names a submenu, so this part chooses inside it
    int chosen = -1;
    // grub reads a part that starts with a digit as a number (strtoul, trailing text ignored).
    bool numeric = !part.empty() && std::isdigit(static_cast<unsigned char>(part[0]));
    long n = 0;
    for (size_t k = 0; numeric && k < part.size() && std::isdigit(static_cast<unsigned char>(part[k])); ++k)
      n = std::min(n * 10 + (part[k] - '0'), 1000000L);
    for (const auto& e : entries) {
      if (e.menu_path.size() <= depth || !path_has_prefix(e.menu_path, prefix)) continue;
      deeper = true;
      const MenuStep& step = e.menu_path[depth];
      bool match = numeric ? step.index == n : step.title == part || (!step.id.empty() && step.id == part);
      if (match) {
        chosen = step.index;
        break;
      }
    }
    if (!deeper) break;  // the path already names an entry; grub ignores the rest
    prefix.push_back(chosen < 0 ? 0 : chosen);
  }
  // A submenu boots its first entry: the first, in menu order, under the prefix.
  for (size_t k = 0; k < entries.size(); ++k)
    if (path_has_prefix(entries[k].menu_path, prefix)) return static_cast<int>(k);
  return -1;
}

std::string grub2_default_path(const std::vector<BootEntry>& entries, int index) {
  if (index < 0 || static_cast<size_t>(index) >= entries.size()) return {};
  const auto& path = entries[static_cast<size_t>(index)].menu_path;
  auto join = [&](auto part) {
    std::string v;
    for (size_t k = 0; k < path.size(); ++k) v += (k ? ">" : "") + part(path[k]);
    return v;
  };
  // A '$' would read as a variable where grub.cfg says ${saved_entry}; such names are left for numbers.
  auto usable = [&](const std::string& v) {
    return v.find('$') == std::string::npos && resolve_grub2_default(entries, v) == index;
  };
  std::string by_id = join([](const MenuStep& s) { return s.id.empty() ? escape_grub2_part(s.title) : s.id; });
  if (usable(by_id)) return by_id;
  std::string by_title = join([](const MenuStep& s) { return escape_grub2_part(s.title); });
  if (usable(by_title)) return by_title;
  return join([](const MenuStep& s) { return std::to_string(s.index); });
}

std::string set_grub2_default(std::string_view text, const std::string& value) {
  std::vector<size_t> default_lines;
  if (parse_grub2(text, &default_lines).saved_default) return std::string(text);  // grubenv's, not grub.cfg's
  auto lines = split_lines_keep(text);
  std::string out;
  bool any = !default_lines.empty();
  for (size_t n = 0; n < lines.size(); ++n) {
    Line l = cut(lines[n]);
    std::optional<Grub2DefaultLine> d;
    if (std::find(default_lines.begin(), default_lines.end(), n) != default_lines.end()) d = grub2_default_line(l.body);
    if (!d || is_grub_var(d->value, "saved_entry") || d->value == value) {
      out += lines[n];
      continue;
    }
    out += l.body.substr(0, d->value_pos);
    out += grub_quote(value);
    out += l.body.substr(d->value_pos + d->value_len);
    out += l.eol;
  }
  if (!any) out = "set default=" + grub_quote(value) + "\n" + out;
  return out;
}

}  // namespace vdkit::fixups
