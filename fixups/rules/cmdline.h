// Kernel command lines: root=, resume= and console= rewritten, options appended, keys and consoles looked up.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fixups/rules/device_names.h"

namespace vdkit::fixups {

// What to change on a kernel command line: root= and resume= through map,
// console=xvc0 / console=hvc0 to console=ttyS0 when fix_console, and the
// options in append ("net.ifnames=0") added at the end when the line sets
// nothing for their key (net.ifnames=1 is the guest's choice and stays).
struct CmdlineEdit {
  DeviceMapFn map;
  bool fix_console = true;
  std::vector<std::string> append;
};
// One kernel command line (tokens separated by blanks or quotes). Appended
// options go before any trailing blanks.
std::string rewrite_cmdline(std::string_view cmdline, const CmdlineEdit& edit);
// Whether a command line sets key (key=anything, or the bare key).
bool cmdline_has_key(std::string_view cmdline, std::string_view key);
// Every console= value on a command line.
std::vector<std::string> find_consoles(std::string_view cmdline);

}  // namespace vdkit::fixups
