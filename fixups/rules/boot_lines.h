// Kernel and module lines of boot loader configs: what grub legacy, grub2, BLS, syslinux and /etc/default/grub share.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fixups/rules/cmdline.h"
#include "fixups/rules/text.h"

namespace vdkit::fixups::detail {

// The same edit with nothing appended: for the command lines that are not Linux's.
CmdlineEdit without_append(const CmdlineEdit& edit);
// The file name of a boot line's first argument (its kernel or module path).
std::string_view boot_file_name(std::string_view args);
// A Linux kernel loaded as a module (Xen entries: grub legacy `module`, grub2 `module`/`xen_module`), not an initrd.
bool linux_module(std::string_view args);
// A kernel or initrd line's arguments: the path, and what follows it (trimmed).
void split_kernel_line(std::string_view rest, std::string& path, std::string& args);

// Rewrites the arguments after the first word on lines whose first word passes `want`; options are appended only
// where appends(word, arguments) says the line is a Linux command line.
template <typename Want, typename Appends>
std::string rewrite_after_keyword(std::string_view text, const CmdlineEdit& edit, Want want, Appends appends) {
  CmdlineEdit plain = without_append(edit);
  return map_lines(text, [&](std::string_view body) -> std::optional<std::string> {
    size_t end = 0;
    std::string_view w = first_word(body, &end);
    if (w.empty() || w[0] == '#' || !want(w)) return std::string(body);
    std::string_view args = body.substr(end);
    bool linux_args = !boot_file_name(args).empty() && appends(w, args);  // never onto a bare keyword
    return std::string(body.substr(0, end)) + rewrite_cmdline(args, linux_args ? edit : plain);
  });
}

}  // namespace vdkit::fixups::detail
