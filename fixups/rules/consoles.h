// Serial consoles outside the kernel command line: inittab gettys and securetty, from Xen's xvc0/hvc0 to ttyS0.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups {

// Consoles: /etc/inittab gettys on xvc0/hvc0 move to ttyS0; /etc/securetty gains ttyS0.
std::string rewrite_inittab(std::string_view text);
std::string rewrite_securetty(std::string_view text);
// The ttys inittab starts gettys on.
std::vector<std::string> inittab_getty_ttys(std::string_view text);

}  // namespace vdkit::fixups
