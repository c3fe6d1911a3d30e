// /etc/default/grub: shell assignments that grub-mkconfig turns into every grub.cfg entry.
#include "fixups/rules/default_grub.h"

#include "fixups/rules/boot_lines.h"
#include "fixups/rules/shell_vars.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

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

}  // namespace vdkit::fixups
