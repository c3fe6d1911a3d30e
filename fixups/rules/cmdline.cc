// Kernel command lines: tokens split on blanks and quotes, so a quoted line keeps its quotes.
#include "fixups/rules/cmdline.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

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
  std::string add;
  for (const auto& opt : edit.append) {
    std::string_view key = std::string_view(opt).substr(0, opt.find('='));
    if (key.empty() || cmdline_has_key(cmdline, key) || cmdline_has_key(add, key)) continue;
    add += (add.empty() ? "" : " ") + opt;
  }
  if (!add.empty()) {
    size_t end = out.size();
    while (end > 0 && is_space(out[end - 1])) --end;
    out.insert(end, (end > 0 ? " " : "") + add);
  }
  return out;
}

bool cmdline_has_key(std::string_view cmdline, std::string_view key) {
  auto delim = [](char c) { return is_space(c) || c == '"' || c == '\''; };
  size_t i = 0;
  while (i < cmdline.size()) {
    if (delim(cmdline[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cmdline.size() && !delim(cmdline[j])) ++j;
    std::string_view tok = cmdline.substr(i, j - i);
    if (tok == key || (starts_with(tok, key) && tok.size() > key.size() && tok[key.size()] == '=')) return true;
    i = j;
  }
  return false;
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

}  // namespace vdkit::fixups
