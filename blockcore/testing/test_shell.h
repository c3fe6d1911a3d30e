// For tests only: run a shell command and capture what it printed (stdout and stderr together).
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace vdkit::test {

// What cmd printed on standard output only (binary-safe: cpio archives, JSON);
// `status` gets its exit status (-1 if it could not run or was killed).
inline std::string output_of(const std::string& cmd, int* status = nullptr) {
  std::string text;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    if (status) *status = -1;
    return text;
  }
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int st = ::pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return text;
}

// Returns the command's exit status (-1 if it could not run or was killed); `out` gets stdout+stderr.
inline int run(const std::string& cmd, std::string* out = nullptr) {
  int status = -1;
  std::string text = output_of(cmd + " 2>&1", &status);
  if (out) *out = text;
  return status;
}

}  // namespace vdkit::test
