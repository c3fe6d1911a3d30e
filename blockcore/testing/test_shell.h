// For tests only: run shell commands and capture their output, name temporary files, read whole files.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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

// A path under $TMPDIR (or /tmp) unique to this process and tag; any old file there is removed.
inline std::string temp_path(const std::string& prefix, const std::string& tag) {
  const char* dir = std::getenv("TMPDIR");
  std::string p = std::string(dir ? dir : "/tmp") + "/" + prefix + "-" + tag + "-" + std::to_string(::getpid());
  ::unlink(p.c_str());
  return p;
}

// The whole content of a file; empty when it cannot be read.
inline std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::vector<uint8_t> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  uint8_t buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  ::close(fd);
  return out;
}

}  // namespace vdkit::test
