// Unified diffs (as `diff -u` prints them) of a guest file before and after a fixup.
#pragma once

#include <string>
#include <string_view>

namespace vdkit::fixups {

// Lines compared beyond this count on either side are shown as one replaced
// hunk instead of a minimal diff (the LCS table would grow quadratically).
inline constexpr size_t kMaxDiffLines = 20000;

// "--- a/PATH" / "+++ b/PATH" and hunks with `context` lines around each change;
// empty when before == after. A missing final newline is marked as diff marks it.
std::string unified_diff(const std::string& path, std::string_view before, std::string_view after, int context = 3);

}  // namespace vdkit::fixups
