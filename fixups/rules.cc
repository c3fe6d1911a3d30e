// Config-file parsers and rewriters for the KVM fixups: line-oriented, careful to keep every byte they do not change.
#include "fixups/rules.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace vdkit::fixups {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

// A line without its terminator, and the terminator.
struct Line {
  std::string_view body;
  std::string_view eol;
};
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

// The first blank-separated word of a line, and where it ends.
std::string_view first_word(std::string_view body, size_t* end = nullptr) {
  size_t i = 0;
  while (i < body.size() && is_blank(body[i])) ++i;
  size_t j = i;
  while (j < body.size() && !is_space(body[j])) ++j;
  if (end) *end = j;
  return body.substr(i, j - i);
}

// Blank-separated fields with their positions.
struct Field {
  size_t pos;
  std::string_view text;
};
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

// Rewrites the device field `index` of fstab-like files.
std::string rewrite_device_field(std::string_view text, const DeviceMapFn& map, size_t index) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    if (is_comment_or_blank(body)) return std::string(body);
    auto fs = fields(body);
    if (fs.size() <= index) return std::string(body);
    auto repl = map ? map(fs[index].text) : std::nullopt;
    if (!repl || *repl == fs[index].text) return std::string(body);
    std::string nb(body);
    nb.replace(fs[index].pos, fs[index].text.size(), *repl);
    return nb;
  });
}

}  // namespace

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

std::optional<DeviceName> parse_device_name(std::string_view s) {
  if (!starts_with(s, "/dev/")) return std::nullopt;
  s.remove_prefix(5);
  DeviceName d;
  for (const char* p : {"xvd", "sd", "hd", "vd"}) {
    if (starts_with(s, p)) {
      d.prefix = p;
      break;
    }
  }
  if (d.prefix.empty()) return std::nullopt;
  s.remove_prefix(d.prefix.size());
  size_t i = 0;
  long disk = 0;
  while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') {
    if (i >= 3) return std::nullopt;  // sdzzz is already far beyond any real disk count
    disk = disk * 26 + (s[i] - 'a' + 1);
    ++i;
  }
  if (i == 0) return std::nullopt;
  d.disk = static_cast<int>(disk - 1);
  size_t j = i;
  long part = 0;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
    if (j - i >= 3) return std::nullopt;
    part = part * 10 + (s[j] - '0');
    ++j;
  }
  if (j != s.size()) return std::nullopt;
  if (j > i && part == 0) return std::nullopt;
  d.partition = static_cast<int>(part);
  return d;
}

std::string disk_letters(int disk) {
  std::string s;
  long n = static_cast<long>(disk) + 1;
  while (n > 0) {
    --n;
    s.insert(s.begin(), static_cast<char>('a' + n % 26));
    n /= 26;
  }
  return s;
}

std::string rewrite_fstab(std::string_view text, const DeviceMapFn& map) { return rewrite_device_field(text, map, 0); }
std::string rewrite_crypttab(std::string_view text, const DeviceMapFn& map) {
  return rewrite_device_field(text, map, 1);
}

std::vector<FstabEntry> parse_fstab(std::string_view text) {
  std::vector<FstabEntry> out;
  for (auto l : split_lines_keep(text)) {
    std::string_view body = cut(l).body;
    if (is_comment_or_blank(body)) continue;
    auto fs = fields(body);
    if (fs.size() < 2) continue;
    FstabEntry e;
    e.device = fs[0].text;
    e.mount_point = fs[1].text;
    if (fs.size() > 2) e.type = fs[2].text;
    if (fs.size() > 3) e.options = fs[3].text;
    out.push_back(std::move(e));
  }
  return out;
}

std::string rewrite_cmdline(std::string_view cmdline, const CmdlineEdit& edit) {
  std::string out;
  size_t i = 0;
  auto delim = [](char c) { return is_space(c) || c == '"' || c == '\''; };
  while (i < cmdline.size()) {
    if (delim(cmdline[i])) {
      out += cmdline[i++];
      continue;
    }
    size_t j = i;
    while (j < cmdline.size() && !delim(cmdline[j])) ++j;
    std::string_view tok = cmdline.substr(i, j - i);
    std::string repl(tok);
    for (std::string_view key : {"root=", "resume="}) {
      if (starts_with(tok, key) && edit.map) {
        if (auto m = edit.map(tok.substr(key.size()))) repl = std::string(key) + *m;
      }
    }
    if (edit.fix_console && starts_with(tok, "console=")) {
      std::string_view v = tok.substr(8);
      size_t comma = v.find(',');
      std::string_view dev = v.substr(0, comma);
      if (dev == "xvc0" || dev == "hvc0")
        repl = "console=ttyS0" + std::string(comma == std::string_view::npos ? "" : v.substr(comma));
    }
    out += repl;
    i = j;
  }
  return out;
}

namespace {
// Rewrites the arguments after the first word on lines whose first word passes `want`.
template <typename Want>
std::string rewrite_after_keyword(std::string_view text, const CmdlineEdit& edit, Want want) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    if (w.empty() || w[0] == '#' || !want(w)) return std::string(body);
    return std::string(body.substr(0, end)) + rewrite_cmdline(body.substr(end), edit);
  });
}
}  // namespace

std::string rewrite_grub_legacy(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(text, edit, [](std::string_view w) { return w == "kernel" || w == "module"; });
}

std::string rewrite_grub2_cfg(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(text, edit, [](std::string_view w) {
    return w == "linux" || w == "linux16" || w == "linuxefi" || w == "module" || w == "module2" || w == "xen_module";
  });
}

std::string rewrite_default_grub(std::string_view text, const CmdlineEdit& edit, bool uuids) {
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    std::string_view t = body;
    size_t lead = 0;
    while (lead < t.size() && is_blank(t[lead])) ++lead;
    std::string_view rest = t.substr(lead);
    if (starts_with(rest, "GRUB_CMDLINE_LINUX") || starts_with(rest, "GRUB_CMDLINE_XEN")) {
      size_t eq = rest.find('=');
      if (eq == std::string_view::npos) return std::string(body);
      return std::string(body.substr(0, lead + eq + 1)) + rewrite_cmdline(rest.substr(eq + 1), edit);
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
  return rewrite_after_keyword(text, edit, [](std::string_view w) { return w == "options"; });
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
    if (head.size() <= 1024) out = head + std::string(1024 - head.size(), '#');
  }
  return out;
}

std::string rewrite_syslinux(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(text, edit, [](std::string_view w) { return lower(w) == "append"; });
}

namespace {
std::string rest_after_word(std::string_view body, size_t end) { return std::string(trim(body.substr(end))); }
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
std::string unquote(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && (v[0] == '"' || v[0] == '\'') && v.back() == v[0]) return std::string(v.substr(1, v.size() - 2));
  return std::string(v);
}

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
std::optional<Grub2DefaultLine> grub2_default_line(std::string_view body) {
  size_t end = 0;
  if (first_word(body, &end) != "set") return std::nullopt;
  size_t i = end;
  while (i < body.size() && is_blank(body[i])) ++i;
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
    if (depth == 0 && !cur && w == "set") {
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
    for (char c : body) {
      if (c == '{') ++depth;
      if (c == '}') {
        --depth;
        if (cur && depth <= depth_at_entry) cur = nullptr;
        while (!open.empty() && depth <= open.back().depth) open.pop_back();
      }
    }
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
  std::string by_id = join([](const MenuStep& s) { return s.id.empty() ? escape_grub2_part(s.title) : s.id; });
  if (resolve_grub2_default(entries, by_id) == index) return by_id;
  std::string by_title = join([](const MenuStep& s) { return escape_grub2_part(s.title); });
  if (resolve_grub2_default(entries, by_title) == index) return by_title;
  return join([](const MenuStep& s) { return std::to_string(s.index); });
}

std::string set_grub2_default(std::string_view text, const std::string& value) {
  std::vector<size_t> default_lines;
  parse_grub2(text, &default_lines);
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
// "IPADDR", "IPADDR0", "IPADDR1" (Red Hat) and "IPADDR_1", "IPADDR_x" (SUSE's suffixed addresses) all match
// base "IPADDR".
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
}  // namespace

NetSummary summarize_ifcfg(std::string_view text) {
  NetSummary s;
  if (auto d = shell_var(text, "DEVICE")) s.interfaces.push_back(*d);
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
    std::string_view v = trim(t.substr(colon + 1));
    size_t h = v.find(" #");
    if (h != std::string_view::npos) v = trim(v.substr(0, h));
    if (!v.empty() && v[0] == '#') v = {};
    y.value = std::string(v);
  }
  return y;
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
// The interface blocks: children of an "ethernets:" (or wifis/bonds/...) mapping.
std::vector<size_t> netplan_interfaces(const std::vector<YamlLine>& ys) {
  std::vector<size_t> out;
  for (size_t k = 0; k < ys.size(); ++k) {
    if (ys[k].indent < 0 || ys[k].key != "ethernets") continue;
    // Only network.ethernets: an "ethernets" key nested anywhere else (inside an interface, say) is data, and
    // treating it as a block of interfaces would let one interface's edits cut into another's.
    size_t parent = k;
    while (parent > 0) {
      --parent;
      if (ys[parent].indent >= 0 && ys[parent].indent < ys[k].indent) break;
    }
    if (parent == k || ys[parent].indent != 0 || ys[parent].key != "network" || ys[parent].list_item) continue;
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
}  // namespace

NetSummary summarize_netplan(std::string_view text) {
  NetSummary s;
  std::vector<YamlLine> ys;
  for (auto l : split_lines_keep(text)) ys.push_back(yaml_line(cut(l).body));
  for (size_t k : netplan_interfaces(ys)) {
    s.interfaces.push_back(ys[k].key);
    size_t end = yaml_block_end(ys, k);
    for (size_t j = k + 1; j < end; ++j) {
      if (ys[j].key == "macaddress") s.macs.push_back(unquote(ys[j].value));
      if ((ys[j].key == "dhcp4" || ys[j].key == "dhcp6") && yaml_true(ys[j].value)) s.dhcp = true;
      if (ys[j].key == "addresses") s.is_static = true;
    }
  }
  return s;
}

namespace {
std::string rewrite_netplan_once(std::string_view text) {
  auto lines = split_lines_keep(text);
  std::vector<YamlLine> ys;
  for (auto l : lines) ys.push_back(yaml_line(cut(l).body));
  std::vector<bool> drop(ys.size(), false);
  std::vector<std::string> replace(ys.size());
  std::vector<std::pair<size_t, std::string>> inserts;  // after line index, new line
  for (size_t k : netplan_interfaces(ys)) {
    size_t end = yaml_block_end(ys, k);
    int child = -1;
    for (size_t j = k + 1; j < end; ++j)
      if (ys[j].indent >= 0) {
        child = ys[j].indent;
        break;
      }
    if (child < 0) continue;
    bool has_addresses = false, has_dhcp4 = false, match_dropped = false;
    size_t set_name = 0;
    for (size_t j = k + 1; j < end; ++j) {
      if (ys[j].indent != child) continue;
      const std::string& key = ys[j].key;
      size_t bend = yaml_block_end(ys, j);
      if (key == "match") {
        // Drop the MAC from the match; a match left empty goes, with its set-name.
        bool others = false, had_mac = false;
        for (size_t m = j + 1; m < bend; ++m) {
          if (ys[m].indent < 0) continue;
          if (ys[m].key == "macaddress" && ys[m].indent > child) {
            for (size_t q = m; q < yaml_block_end(ys, m); ++q) drop[q] = true;
            had_mac = true;
          } else if (!drop[m]) {
            others = true;
          }
        }
        bool inline_value = !ys[j].value.empty();
        // Only a match this rewrite emptied goes; one that was already empty is the guest's business.
        if (had_mac && !others && !inline_value) {
          for (size_t q = j; q < bend; ++q) drop[q] = true;
          match_dropped = true;
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
std::string rewrite_netplan(std::string_view text) {
  constexpr int kMaxPasses = 8;
  std::string cur(text);
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    std::string next = rewrite_netplan_once(cur);
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

std::vector<std::string> find_device_names(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while ((i = text.find("/dev/", i)) != std::string_view::npos) {
    size_t j = i + 5;
    while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])))) ++j;
    std::string_view cand = text.substr(i, j - i);
    if (auto d = parse_device_name(cand); d && d->prefix != "vd") out.emplace_back(cand);
    i = j;
  }
  return out;
}

std::vector<std::string> find_consoles(std::string_view cmdline) {
  std::vector<std::string> out;
  for (auto& f : fields(cmdline)) {
    std::string_view t = f.text;
    while (!t.empty() && (t[0] == '"' || t[0] == '\'')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == '"' || t.back() == '\'')) t.remove_suffix(1);
    if (starts_with(t, "console=")) out.emplace_back(t.substr(8));
  }
  return out;
}

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
