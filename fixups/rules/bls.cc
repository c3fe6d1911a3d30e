// BLS entries: one key and its value per line; options lines are the command line.
#include "fixups/rules/bls.h"

#include "fixups/rules/boot_lines.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

std::string rewrite_bls_entry(std::string_view text, const CmdlineEdit& edit) {
  return rewrite_after_keyword(
      text, edit, [](std::string_view w) { return w == "options"; },
      [](std::string_view, std::string_view args) { return args.find("$kernelopts") == std::string_view::npos; });
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

}  // namespace vdkit::fixups
