// Fuzzes the grub2 grub.cfg, /etc/default/grub and grubenv parser and rewriter of the fixups: idempotence and structure kept (see fuzz_rewriter.h).
#include "fixups/rules/cmdline.h"
#include "fixups/rules/default_grub.h"
#include "fixups/rules/grub2.h"
#include "fixups/rules/grubenv.h"
#include "fixups/rules/shell_vars.h"
#include "tests/fuzz/fuzz_rewriter.h"

using namespace vdkit::fixups;
using namespace vdkit::fuzz;

namespace {

// Titles, kernels and menu paths of a menu, to compare a menu before and after a rewrite.
std::string menu_shape(const BootMenu& m) {
  std::string s;
  for (const auto& e : m.entries) {
    s += e.title + '\0' + e.kernel + '\0' + e.id + '\0';
    for (const auto& st : e.menu_path) s += std::to_string(st.index) + '>' + st.title + '>' + st.id + '\0';
    s += '\n';
  }
  return s;
}

// The default switch on grub.cfg: every entry's path resolves back to it; setting it is idempotent, keeps the menu,
// and is what the file then says (unless the default is grubenv's).
void check_default_switch(std::string_view in) {
  BootMenu m = parse_grub2_cfg(in);
  std::vector<std::string> values = {"0", "gnulinux-advanced-x>gnulinux-y", "a>>b>c"};
  for (size_t k = 0; k < m.entries.size() && k < 8; ++k) {
    std::string path = grub2_default_path(m.entries, static_cast<int>(k));
    if (resolve_grub2_default(m.entries, path) != static_cast<int>(k)) violated("grub2 path resolves back", in, path);
    values.push_back(path);
  }
  for (const auto& v : values) {
    std::string out = check_idempotent("set_grub2_default idempotent", in,
                                       [&](std::string_view t) { return set_grub2_default(t, v); });
    BootMenu after = parse_grub2_cfg(out);
    if (menu_shape(after) != menu_shape(m)) violated("set_grub2_default keeps the menu", in, out);
    if (!m.saved_default && after.default_value != v) violated("set_grub2_default sets the default", in, out);
    if (m.saved_default && out != in) violated("set_grub2_default leaves a saved default alone", in, out);
  }
}

void check_grub_default(std::string_view in) {
  for (std::string v : {"gnulinux-advanced-x>gnulinux-y", "a$b", "it's"}) {
    std::string out = check_idempotent("set_default_grub_default idempotent", in,
                                       [&](std::string_view t) { return set_default_grub_default(t, v); });
    if (out != in && shell_var(out, "GRUB_DEFAULT") != v) violated("GRUB_DEFAULT reads back", in, out);
  }
}

void check_grubenv(std::string_view in) {
  for (std::string v : {"gnulinux-advanced-x>gnulinux-y", "a\\b"}) {
    auto once = set_grubenv_var(in, "saved_entry", v);
    if (!once) {
      if (in.size() != 1024) violated("only a full 1024-byte block refuses a variable", in, "");
      continue;
    }
    auto twice = set_grubenv_var(*once, "saved_entry", v);
    if (!twice || *twice != *once) violated("set_grubenv_var idempotent", in, *once);
    if (grubenv_var(*once, "saved_entry") != v) violated("saved_entry reads back", in, *once);
    bool block = in.size() == 1024 && in.substr(in.rfind('\n') + 1).find_first_not_of('#') == std::string_view::npos;
    if (block && once->size() != 1024) violated("grubenv stays 1024 bytes", in, *once);
  }
}

// Appending options only inserts them, in one place, and afterwards the command line sets every key.
void check_append(std::string_view in) {
  auto edit = fuzz_edit();
  auto plain = edit;
  plain.append.clear();
  std::string out = rewrite_cmdline(in, edit), base = rewrite_cmdline(in, plain);
  for (const char* key : {"net.ifnames", "biosdevname"})
    if (!cmdline_has_key(out, key)) violated("appended options are set", in, out);
  size_t p = 0;
  while (p < base.size() && p < out.size() && base[p] == out[p]) ++p;
  if (out.size() < base.size() || out.compare(p + (out.size() - base.size()), std::string::npos, base, p) != 0)
    violated("options are only inserted", in, out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = as_text(data, size);
  auto edit = fuzz_edit();
  check_idempotent("grub.cfg idempotent", in, [&](std::string_view t) { return rewrite_grub2_cfg(t, edit); });
  check_idempotent("default/grub idempotent", in, [&](std::string_view t) { return rewrite_default_grub(t, edit, true); });
  check_idempotent("default/grub (no uuids) idempotent", in, [&](std::string_view t) { return rewrite_default_grub(t, edit, false); });
  check_idempotent("grubenv idempotent", in, [&](std::string_view t) { return rewrite_grubenv(t, edit); });
  check_idempotent("cmdline idempotent", in, [&](std::string_view t) { return rewrite_cmdline(t, edit); });
  check_append(in);
  check_default_switch(in);
  check_grub_default(in);
  check_grubenv(in);
  return 0;
}
