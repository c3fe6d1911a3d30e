// Kernel and module lines of boot loader configs: which file a line loads, and how its command line is cut.
#include "fixups/rules/boot_lines.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups::detail {

CmdlineEdit without_append(const CmdlineEdit& edit) {
  CmdlineEdit e = edit;
  e.append.clear();
  return e;
}

std::string_view boot_file_name(std::string_view args) {
  auto fs = fields(args);
  size_t k = 0;
  while (k < fs.size() && starts_with(fs[k].text, "--")) ++k;  // grub2 "module --nounzip /initrd"
  if (k >= fs.size()) return {};
  std::string_view p = fs[k].text;
  size_t slash = p.rfind('/');
  return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

bool linux_module(std::string_view args) {
  std::string n = lower(boot_file_name(args));
  return starts_with(n, "vmlinu") || starts_with(n, "bzimage") || starts_with(n, "kernel");
}

void split_kernel_line(std::string_view rest, std::string& path, std::string& args) {
  auto fs = fields(rest);
  if (fs.empty()) return;
  path = std::string(fs[0].text);
  args = std::string(trim(rest.substr(fs[0].pos + fs[0].text.size())));
}

}  // namespace vdkit::fixups::detail
