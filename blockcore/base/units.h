// Byte counts for people: "1.5 GiB", shared by the CLI, the NBD export description and progress output.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace vdkit {

// 1536 -> "1.5 KiB"; below 1 KiB, "N B".
inline std::string human_size(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[64];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
  return buf;
}

}  // namespace vdkit
