// udev 70-persistent-net.rules: every rule names a NIC by the old hypervisor's MAC, so none survives the move.
#include "fixups/rules/udev_net_rules.h"

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

int count_udev_rules(std::string_view text) {
  int n = 0;
  for (auto l : split_lines_keep(text))
    if (!is_comment_or_blank(cut(l).body)) ++n;
  return n;
}

std::string rewrite_persistent_net_rules(std::string_view text) { return {}; }

}  // namespace vdkit::fixups
