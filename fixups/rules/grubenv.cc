// grubenv, grub's saved environment: kernelopts and saved_entry edited inside its 1024-byte block.
#include "fixups/rules/grubenv.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

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

}  // namespace vdkit::fixups
