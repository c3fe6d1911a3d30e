// Line primitives every config dialect shares: lines split with their terminators kept, so rewrites keep them.
#pragma once

#include <string_view>
#include <vector>

namespace vdkit::fixups {

// Splits text into lines, each keeping its terminator ("\n" or "\r\n" stays part of the line).
std::vector<std::string_view> split_lines_keep(std::string_view text);

}  // namespace vdkit::fixups
