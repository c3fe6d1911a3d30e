// rpm's version order (rpmvercmp), which grub's blscfg sorts BLS entries by.
#include "fixups/rules/rpm_version.h"

#include <cctype>

namespace vdkit::fixups {

int rpm_vercmp(std::string_view a, std::string_view b) {
  if (a == b) return 0;
  size_t i = 0, j = 0;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  auto digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  while (i < a.size() || j < b.size()) {
    while (i < a.size() && !alnum(a[i]) && a[i] != '~' && a[i] != '^') ++i;
    while (j < b.size() && !alnum(b[j]) && b[j] != '~' && b[j] != '^') ++j;
    bool ta = i < a.size() && a[i] == '~', tb = j < b.size() && b[j] == '~';
    if (ta || tb) {
      if (!(ta && tb)) return ta ? -1 : 1;
      ++i, ++j;
      continue;
    }
    bool ca = i < a.size() && a[i] == '^', cb = j < b.size() && b[j] == '^';
    if (ca || cb) {
      if (i >= a.size()) return -1;
      if (j >= b.size()) return 1;
      if (!ca) return 1;
      if (!cb) return -1;
      ++i, ++j;
      continue;
    }
    if (i >= a.size() || j >= b.size()) break;
    bool num = digit(a[i]);
    auto seg = [&](std::string_view s, size_t& k) {
      size_t st = k;
      while (k < s.size() && (num ? digit(s[k]) : alpha(s[k]))) ++k;
      return s.substr(st, k - st);
    };
    std::string_view sa = seg(a, i), sb = seg(b, j);
    if (sb.empty()) return num ? 1 : -1;  // a number is newer than letters
    if (num) {
      while (!sa.empty() && sa[0] == '0') sa.remove_prefix(1);
      while (!sb.empty() && sb[0] == '0') sb.remove_prefix(1);
      if (sa.size() != sb.size()) return sa.size() < sb.size() ? -1 : 1;
    }
    int c = sa.compare(sb);
    if (c) return c < 0 ? -1 : 1;
  }
  if (i >= a.size() && j >= b.size()) return 0;
  return i < a.size() ? 1 : -1;
}

}  // namespace vdkit::fixups
