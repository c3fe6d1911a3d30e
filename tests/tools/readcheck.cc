// readcheck: reads an image through blockcore and writes the raw bytes, checking the extent contract on the way.
// Used by the integration tests to compare vdkit's reading with `qemu-img convert -O raw`.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "blockcore/base/codec.h"
#include "blockcore/env/env_settings.h"
#include "blockcore/sources/image.h"

using namespace vdkit;

static int usage() {
  std::fprintf(stderr,
               "usage: readcheck [--allow-external-paths] [--threads N] [--random-chunks SEED] IMAGE OUT.raw\n"
               "Reads IMAGE through blockcore into OUT.raw (sparse), checks that every extent of type zero or\n"
               "hole reads as zeros and that extents tile the disk. Exit 0 when all is well.\n");
  return 2;
}

int main(int argc, char** argv) {
  OpenOptions opts;
  unsigned threads = 1;
  long seed = -1;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--allow-external-paths") opts.allow_external_paths = true;
    else if (a == "--threads" && i + 1 < argc) threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--random-chunks" && i + 1 < argc) seed = std::atol(argv[++i]);
    else if (a.rfind("--", 0) == 0) return usage();
    else pos.push_back(a);
  }
  if (pos.size() != 2) return usage();
  // VDKIT_IO picks the engine under test, as in the real front ends.
  if (auto io = apply_env_settings(read_env_settings()); !io.ok()) {
    std::fprintf(stderr, "readcheck: %s\n", io.status().message().c_str());
    return 2;
  }
  auto dev = open_image(pos[0], opts);
  if (!dev.ok()) {
    std::fprintf(stderr, "readcheck: %s\n", dev.status().message().c_str());
    return 1;
  }
  BlockDevice& d = **dev;
  int out = ::open(pos[1].c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (out < 0 || ::ftruncate(out, static_cast<off_t>(d.size())) != 0) {
    std::perror("readcheck: output");
    return 1;
  }
  std::vector<Extent> ex;
  Status st = d.extents(0, d.size(), ex);
  if (!st.ok()) {
    std::fprintf(stderr, "readcheck: extents: %s\n", st.message().c_str());
    return 1;
  }
  uint64_t expect = 0;
  for (const auto& e : ex) {
    if (e.offset != expect || e.length == 0) {
      std::fprintf(stderr, "readcheck: extents do not tile the disk at offset %llu\n",
                   static_cast<unsigned long long>(expect));
      return 1;
    }
    expect += e.length;
  }
  if (expect != d.size()) {
    std::fprintf(stderr, "readcheck: extents end at %llu, disk is %llu bytes\n", static_cast<unsigned long long>(expect),
                 static_cast<unsigned long long>(d.size()));
    return 1;
  }
  // Read in chunks (fixed 1 MiB, or random sizes and alignments), spread over threads.
  std::vector<std::pair<uint64_t, uint64_t>> chunks;
  std::mt19937_64 rng(seed >= 0 ? static_cast<uint64_t>(seed) : 0);
  for (uint64_t p = 0; p < d.size();) {
    uint64_t n = seed >= 0 ? 1 + rng() % (3u << 20) : (1u << 20);
    n = std::min(n, d.size() - p);
    chunks.emplace_back(p, n);
    p += n;
  }
  std::atomic<size_t> next{0};
  std::atomic<int> failed{0};
  auto work = [&] {
    std::vector<uint8_t> buf;
    size_t i;
    while ((i = next.fetch_add(1)) < chunks.size()) {
      auto [off, len] = chunks[i];
      buf.resize(len);
      Status s = d.read(off, buf);
      if (!s.ok()) {
        std::fprintf(stderr, "readcheck: read at %llu: %s\n", static_cast<unsigned long long>(off), s.message().c_str());
        failed = 1;
        return;
      }
      if (!is_all_zero(buf.data(), len) && ::pwrite(out, buf.data(), len, static_cast<off_t>(off)) != (ssize_t)len) {
        std::perror("readcheck: write");
        failed = 1;
        return;
      }
    }
  };
  std::vector<std::thread> ts;
  for (unsigned t = 1; t < threads; ++t) ts.emplace_back(work);
  work();
  for (auto& t : ts) t.join();
  if (failed) return 1;
  // Zero and hole extents must read as zeros.
  std::vector<uint8_t> buf(1 << 20);
  for (const auto& e : ex) {
    if (e.type == ExtentType::kData) continue;
    for (uint64_t p = e.offset; p < e.offset + e.length;) {
      size_t n = std::min<uint64_t>(buf.size(), e.offset + e.length - p);
      if (::pread(out, buf.data(), n, static_cast<off_t>(p)) != static_cast<ssize_t>(n) || !is_all_zero(buf.data(), n)) {
        std::fprintf(stderr, "readcheck: extent %s at %llu+%llu does not read as zeros\n", to_string(e.type),
                     static_cast<unsigned long long>(e.offset), static_cast<unsigned long long>(e.length));
        return 1;
      }
      p += n;
    }
  }
  ::close(out);
  return 0;
}
