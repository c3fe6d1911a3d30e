// Config-file parsers and rewriters for the KVM fixups: line-oriented, careful to keep every byte they do not change.
#include "fixups/rules.h"
#include "fixups/rules/text.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>

namespace vdkit::fixups {
using namespace detail;

namespace {
CmdlineEdit without_append(const CmdlineEdit& edit) {
  CmdlineEdit e = edit;
  e.append.clear();
  return e;
}
// The file name of a boot line's first argument (its kernel or module path).
std::string_view boot_file_name(std::string_view args) {
  auto fs = fields(args);
  size_t k = 0;
  while (k < fs.size() && starts_with(fs[k].text, "--")) ++k;  // grub2 "module --nounzip /initrd"
  if (k >= fs.size()) return {};
  std::string_view p = fs[k].text;
  size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}
// A Linux kernel loaded as a module (Xen entries: grub legacy `module`, grub2 `module`/`xen_module`), not an initrd.
bool linux_module(std::string_view args) {
  std::string n = lower(boot_file_name(args));
  return starts_with(n, "vmlinu") || starts_with(n, "bzimage") || starts_with(n, "kernel");
}
// Rewrites the arguments after the first word on lines whose first word passes `want`; options are appended only
// where appends(word, arguments) says the line is a Linux command line.
template <typename Want, typename Appends>
std::string rewrite_after_keyword(std::string_view text, const CmdlineEdit& edit, Want want, Appends appends) {
  CmdlineEdit plain = without_append(edit);
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    if (w.empty() || w[0] == '#' || !want(w)) return std::string(body);
    std::string_view args = body.substr(end);
    bool linux_args = !boot_file_name(args).empty() && appends(w, args);  // never onto a bare keyword
    return std::string(body.substr(0, end)) + rewrite_cmdline(args, linux_args ? edit : plain);
  });
}
}  // namespace

std::string rewrite_grub_legacy(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit, [](std::string_view w) { return w == "kernel" || w == "module"; },
      [](std::string_view w, std::string_view args) {
        // `kernel /xen.gz-2.6.18` is the hypervisor; its Linux kernel is the first module.
        return w == "kernel" ? !starts_with(lower(boot_file_name(args)), "xen") : linux_module(args);
      });
}

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

std::string rewrite_default_grub(std::string_view text, const CmdlineEdit& edit, bool uuids) {
  CmdlineEdit plain = without_append(edit);
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    std::string_view t = body;
    size_t lead = 0;
    while (lead < t.size() && is_blank(t[lead])) ++lead;
    std::string_view rest = t.substr(lead);
    if (starts_with(rest, "GRUB_CMDLINE_LINUX") || starts_with(rest, "GRUB_CMDLINE_XEN")) {
      size_t eq = rest.find('=');
      if (eq == std::string_view::npos) return std::string(body);
      std::string_view value = rest.substr(eq + 1);
      std::string head(body.substr(0, lead + eq + 1));
      // Options go only into GRUB_CMDLINE_LINUX (every entry, recovery too), inside its quotes.
      if (rest.substr(0, eq) != "GRUB_CMDLINE_LINUX") return head + rewrite_cmdline(value, plain);
      std::string_view v = value;
      while (!v.empty() && is_blank(v.back())) v.remove_suffix(1);
      std::string_view tail = value.substr(v.size());
      if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0] &&
          v.substr(1, v.size() - 2).find(v[0]) == std::string_view::npos)
        return head + v[0] + rewrite_cmdline(v.substr(1, v.size() - 2), edit) + v[0] + std::string(tail);
      // Unquoted: one word at most, or the options would not be part of the value.
      if (v.find_first_of(" \t\"'#") == std::string_view::npos) {
        std::string r = rewrite_cmdline(v, edit);
        if (r.find(' ') != std::string::npos) r = "\"" + r + "\"";
        return head + r + std::string(tail);
      }
      return head + rewrite_cmdline(value, plain);
    }
    if (uuids && starts_with(rest, "GRUB_DISABLE_LINUX_UUID=")) {
      std::string_view v = trim(rest.substr(24));
      if (v == "true" || v == "\"true\"" || v == "'true'")
        return std::string(body.substr(0, lead)) + "GRUB_DISABLE_LINUX_UUID=false";
    }
    return std::string(body);
  });
}

std::string rewrite_bls_entry(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit, [](std::string_view w) { return w == "options"; },
      [](std::string_view, std::string_view args) { return args.find("$kernelopts") == std::string_view::npos; });
}

std::string rewrite_grubenv(std::string_view text, const CmdlineEdit& edit) {
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (!starts_with(body, "kernelopts=")) return std::string(body);
    return "kernelopts=" + rewrite_cmdline(body.substr(11), edit);
  });
  // grub reads grubenv as one 1024-byte block padded with '#': keep the size.
  if (out.size() != text.size() && text.size() == 1024 && !text.empty() && text.back() == '#') {
    size_t pad_end = out.size();
    size_t pad_start = pad_end;
    while (pad_start > 0 && out[pad_start - 1] == '#') --pad_start;
    std::string head = out.substr(0, pad_start);
    // grub cannot read a grubenv longer than its block: when the new kernelopts do not fit, keep the file as it is
    // (the caller warns).
    if (head.size() > 1024) return std::string(text);
    out = head + std::string(1024 - head.size(), '#');
  }
  return out;
}

std::string rewrite_syslinux(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit, [](std::string_view w) { return lower(w) == "append"; },
      [](std::string_view, std::string_view args) { return args.find(" --- ") == std::string_view::npos; });
}

namespace {
// grub legacy allows "default=0" and "default 0".
bool grub_keyword(std::string_view body, std::string_view kw, std::string* value) {
  std::string_view t = trim(body);
  if (!starts_with(t, kw)) return false;
  std::string_view r = t.substr(kw.size());
  if (!r.empty() && !is_blank(r[0]) && r[0] != '=') return false;
  while (!r.empty() && (is_blank(r[0]) || r[0] == '=')) r.remove_prefix(1);
  if (value) *value = std::string(r);
  return true;
}
void split_kernel_line(std::string_view rest, std::string& path, std::string& args) {
  auto fs = fields(rest);
  if (fs.empty()) return;
  path = std::string(fs[0].text);
  args = std::string(trim(rest.substr(fs[0].pos + fs[0].text.size())));
}
int parse_index(const std::string& s) {
  if (s.empty() || s.size() > 6) return -1;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  return std::stoi(s);
}
}  // namespace

BootMenu parse_grub_legacy(std::string_view text) {
  BootMenu m;
  BootEntry* cur = nullptr;
  int modules = 0;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    std::string v;
    if (!cur && grub_keyword(body, "default", &v)) {
      m.default_value = v;
      continue;
    }
    if (grub_keyword(body, "title", &v)) {
      m.entries.push_back({});
      cur = &m.entries.back();
      cur->title = v;
      modules = 0;
      continue;
    }
    if (!cur) continue;
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    std::string rest = rest_after_word(body, end);
    if (w == "kernel") {
      split_kernel_line(rest, cur->kernel, cur->cmdline);
    } else if (w == "initrd") {
      std::string a;
      split_kernel_line(rest, cur->initrd, a);
    } else if (w == "module") {
      // Xen dom0 entries: kernel is xen.gz, first module the Linux kernel, second its initrd.
      if (modules == 0) {
        cur->hypervisor = cur->kernel;
        cur->kernel.clear();
        cur->cmdline.clear();
        split_kernel_line(rest, cur->kernel, cur->cmdline);
      } else if (modules == 1) {
        std::string a;
        split_kernel_line(rest, cur->initrd, a);
      }
      ++modules;
    }
  }
  int d = m.default_value.empty() ? 0 : parse_index(m.default_value);
  if (d >= 0 && d < static_cast<int>(m.entries.size())) m.default_index = d;
  return m;
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

std::string set_default_grub_default(std::string_view text, const std::string& value) {
  std::optional<std::string> current = shell_var(text, "GRUB_DEFAULT");
  if (current == "saved" || current == value) return std::string(text);
  std::string quoted;
  if (value.find_first_of("\"$\\`") == std::string::npos)
    quoted = "\"" + value + "\"";
  else if (value.find('\'') == std::string::npos)
    quoted = "'" + value + "'";
  if (quoted.empty() || value.find_first_of("\r\n") != std::string::npos) return std::string(text);
  bool found = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    std::string_view t = trim(body);
    std::string_view u = starts_with(t, "export ") ? trim(t.substr(7)) : t;
    if (!starts_with(u, "GRUB_DEFAULT=")) return std::string(body);
    found = true;
    size_t eq = body.find("GRUB_DEFAULT=") + 13;
    return std::string(body.substr(0, eq)) + quoted;
  });
  if (!found) {
    if (!out.empty() && out.back() != '\n') out += "\n";
    out += "GRUB_DEFAULT=" + quoted + "\n";
  }
  // A line this rewrite cannot make read back as value (an unbalanced quote before it) is left alone.
  return shell_var(out, "GRUB_DEFAULT") == value ? out : std::string(text);
}

std::optional<std::string> grubenv_var(std::string_view text, std::string_view key) {
  std::optional<std::string> found;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (body.size() <= key.size() || !starts_with(body, key) || body[key.size()] != '=') continue;
    std::string v;
    std::string_view raw = body.substr(key.size() + 1);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
      v += raw[i];
    }
    found = std::move(v);  // grub's load_env sets each in turn: the last wins
  }
  return found;
}

std::optional<std::string> set_grubenv_var(std::string_view text, std::string_view key, std::string_view value) {
  if (value.find_first_of("\r\n") != std::string_view::npos || key.empty() ||
      key.find_first_of("=\r\n") != std::string_view::npos)
    return std::nullopt;
  std::string line = std::string(key) + "=";
  for (char c : value) {
    if (c == '\\') line += '\\';
    line += c;
  }
  // Everything after the last newline is grub's '#' padding in a real block.
  size_t last_nl = text.rfind('\n');
  size_t pad_start = last_nl == std::string_view::npos ? 0 : last_nl + 1;
  bool padded = text.find_first_not_of('#', pad_start) == std::string_view::npos;
  bool block = padded && text.size() == 1024;
  bool found = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (body.size() <= key.size() || !starts_with(body, key) || body[key.size()] != '=') return std::string(body);
    found = true;
    return line;
  });
  if (!found) {
    if (padded) {
      out.insert(pad_start, line + "\n");
    } else {
      if (!out.empty() && out.back() != '\n') out += "\n";
      out += line + "\n";
    }
  }
  if (block && out.size() != 1024) {
    size_t nl = out.rfind('\n');
    std::string head = out.substr(0, nl == std::string::npos ? 0 : nl + 1);
    if (head.size() > 1024) return std::nullopt;
    out = head + std::string(1024 - head.size(), '#');
  }
  return out;
}

int rpm_vercmp(std::string_view a, std::string_view b) {
  if (a == b) return 0;
  size_t i = 0, j = 0;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  while (i < a.size() || j < b.size()) {
    while (i < a.size() && !alnum(a[i]) && a[i] != '~' && a[i] != '^') ++i;
    while (j < b.size() && !alnum(b[j]) && b[j] != '~' && b[j] != '^') ++j;
    bool ta = i < a.size() && a[i] == '~', tb = j < b.size() && b[j] == '~';
    if (ta || tb) {
      if (!(ta && tb)) return ta ? -1 : 1;
      ++i, ++j;
      continue;
    }
    bool ca = i < a.size() && a[i] == '^', cb = j < b.size() && b[j] == '^';
    if (ca || cb) {
      if (i >= a.size()) return -1;
      if (j >= b.size()) return 1;
      if (!ca) return 1;
      if (!cb) return -1;
      ++i, ++j;
      continue;
    }
    if (i >= a.size() || j >= b.size()) break;
    bool num = digit(a[i]);
    auto seg = [&](std::string_view s, size_t& k) {
      size_t st = k;
      while (k < s.size() && (num ? digit(s[k]) : alpha(s[k]))) ++k;
      return s.substr(st, k - st);
    };
    std::string_view sa = seg(a, i), sb = seg(b, j);
    if (sb.empty()) return num ? 1 : -1;  // a number is newer than letters
    if (num) {
      while (!sa.empty() && sa[0] == '0') sa.remove_prefix(1);
      while (!sb.empty() && sb[0] == '0') sb.remove_prefix(1);
      if (sa.size() != sb.size()) return sa.size() < sb.size() ? -1 : 1;
    }
    int c = sa.compare(sb);
    if (c) return c < 0 ? -1 : 1;
  }
  if (i >= a.size() && j >= b.size()) return 0;
  return i < a.size() ? 1 : -1;
}

BootEntry parse_bls_entry(std::string_view text) {
  BootEntry e;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    std::string rest = rest_after_word(body, end);
    if (w == "title")
      e.title = rest;
    else if (w == "linux")
      e.kernel = rest;
    else if (w == "initrd" && e.initrd.empty())
      e.initrd = rest;
    else if (w == "options")
      e.cmdline = e.cmdline.empty() ? rest : e.cmdline + " " + rest;
    else if (w == "version")
      e.version = rest;
  }
  return e;
}

BootMenu parse_syslinux(std::string_view text) {
  BootMenu m;
  BootEntry* cur = nullptr;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    size_t end = 0;
    std::string w = lower(first_word(body, &end));
    std::string rest = rest_after_word(body, end);
    if (w == "default" && !cur) {
      m.default_value = rest;
    } else if (w == "label") {
      m.entries.push_back({});
      cur = &m.entries.back();
      cur->title = rest;
    } else if (cur && (w == "kernel" || w == "linux")) {
      cur->kernel = rest;
    } else if (cur && w == "initrd") {
      cur->initrd = rest;
    } else if (cur && w == "append") {
      cur->cmdline = rest;
      for (auto& f : fields(rest))
        if (starts_with(f.text, "initrd=")) cur->initrd = std::string(f.text.substr(7));
    }
  }
  for (size_t k = 0; k < m.entries.size(); ++k)
    if (m.entries[k].title == m.default_value) m.default_index = static_cast<int>(k);
  if (m.default_value.empty() && !m.entries.empty()) m.default_index = 0;
  return m;
}

std::string set_grub_legacy_default(std::string_view text, int index) {
  bool done = false;
  bool in_entries = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (grub_keyword(body, "title", nullptr)) in_entries = true;
    std::string v;
    if (!done && !in_entries && !is_comment_or_blank(body) && grub_keyword(body, "default", &v)) {
      done = true;
      if (v == std::to_string(index)) return std::string(body);
      size_t pos = body.find("default");
      std::string_view after = body.substr(pos + 7);
      size_t k = 0;
      while (k < after.size() && (is_blank(after[k]) || after[k] == '=')) ++k;
      // "default" alone gets "=", so the result still reads as the default keyword next time.
      std::string sep = k == 0 ? std::string("=") : std::string(after.substr(0, k));
      return std::string(body.substr(0, pos + 7)) + sep + std::to_string(index);
    }
    return std::string(body);
  });
  if (!done) out = "default=" + std::to_string(index) + "\n" + out;
  return out;
}

std::string set_syslinux_default(std::string_view text, const std::string& label) {
  bool done = false;
  std::string out = map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    if (!done && lower(w) == "default") {
      done = true;
      if (trim(body.substr(end)) == label) return std::string(body);
      size_t k = end;
      while (k < body.size() && is_blank(body[k])) ++k;
      return std::string(body.substr(0, k == end ? end : k)) + (k == end ? " " : "") + label;
    }
    return std::string(body);
  });
  if (!done) out = "DEFAULT " + label + "\n" + out;
  return out;
}

std::optional<std::string> shell_var(std::string_view text, std::string_view key) {
  std::optional<std::string> found;
  for (auto l : split_lines_keep(text)) {
    std::string_view t = trim(cut(l).body);
    if (starts_with(t, "export ")) t = trim(t.substr(7));
    if (!starts_with(t, key) || t.size() <= key.size() || t[key.size()] != '=') continue;
    std::string_view v = trim(t.substr(key.size() + 1));
    if (!v.empty() && (v[0] == '"' || v[0] == '\'')) {
      size_t e = v.find(v[0], 1);
      v = v.substr(1, e == std::string_view::npos ? std::string_view::npos : e - 1);
    } else {
      size_t h = v.find(" #");
      if (h != std::string_view::npos) v = trim(v.substr(0, h));
    }
    found = std::string(v);  // the last assignment wins, as in the shell
  }
  return found;
}

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
