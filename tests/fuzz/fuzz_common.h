// Shared harness code: puts fuzz input into files in a private RAM folder and drives the public reading path.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "blockcore/sources/image.h"

namespace vdkit::fuzz {

// A per-process folder in /dev/shm (falls back to /tmp), removed at exit.
inline const std::string& scratch_dir() {
  // Never destroyed: the atexit cleanup runs after static destructors would have freed it.
  static const std::string* dir = [] {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    auto* d = new std::string(base + "/vdkit-fuzz." + std::to_string(getpid()));
    mkdir(d->c_str(), 0700);
    std::atexit([] {
      std::string cmd = "rm -rf '" + scratch_dir() + "'";
      (void)!system(cmd.c_str());
    });
    return d;
  }();
  return *dir;
}

inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = scratch_dir() + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd >= 0) {
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd, data + done, size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fd);
  }
  return path;
}

// Reads a bounded sample of the device (the start, around every extent
// boundary in the first GiB, and the end) and its extents. Errors are fine;
// crashes, hangs, leaks and UB are what the harness is looking for.
inline void exercise(BlockDevice& dev) {
  constexpr uint64_t kMaxMapped = 1ull << 30;
  constexpr size_t kChunk = 64 * 1024;
  constexpr int kMaxReads = 64;
  const uint64_t size = dev.size();
  std::vector<uint8_t> buf(kChunk);
  int reads = 0;
  auto read_at = [&](uint64_t off) {
    if (reads >= kMaxReads || off >= size) return;
    ++reads;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    (void)dev.read(off, std::span<uint8_t>(buf.data(), n));
  };
  std::vector<Extent> ex;
  (void)dev.extents(0, std::min(size, kMaxMapped), ex);
  read_at(0);
  for (const auto& e : ex) {
    read_at(e.offset);
    if (e.length > 1) read_at(e.offset + e.length - 1);
  }
  if (size > 0) read_at(size - 1);
  // Odd offsets and lengths through cluster boundaries.
  if (size > 70000) {
    std::vector<uint8_t> odd(70000);
    (void)dev.read(1, std::span<uint8_t>(odd.data(), odd.size() - 1));
  }
  (void)dev.info();
}

}  // namespace vdkit::fuzz
