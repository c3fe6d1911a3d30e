// grub legacy (menu.lst, grub.conf): title blocks, Xen entries whose Linux kernel is the first module.
#include "fixups/rules/grub_legacy.h"

#include <cctype>

#include "fixups/rules/boot_lines.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

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
int parse_index(const std::string& s) {
  if (s.empty() || s.size() > 6) return -1;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  return std::stoi(s);
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

}  // namespace vdkit::fixups
