// nbd_randread: a small libnbd client issuing aligned random reads with a fixed queue depth, for bench/nbd.
#include <libnbd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: nbd_randread [--reads N] [--block BYTES] [--depth N] [--seed N] [--check RAW] URI\n"
               "Reads N random BYTES-aligned blocks of BYTES (default 20000 reads of 4096) from the NBD export at\n"
               "URI, keeping --depth requests in flight (default 16) on one connection. Prints one line:\n"
               "  reads=N bytes=B seconds=S reads_per_second=R\n"
               "--check RAW compares every block with the same range of RAW and exits 1 on a mismatch.\n");
  return 2;
}

struct Slot {
  std::vector<uint8_t> buf;
  uint64_t offset = 0;
  bool busy = false;
  int error = 0;
  bool done = false;
};

int on_complete(void* user_data, int* error) {
  auto* s = static_cast<Slot*>(user_data);
  s->error = *error;
  s->done = true;
  return 1;  // retire the command; the slot records what happened
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t reads = 20000, block = 4096, depth = 16, seed = 1;
  const char* check = nullptr;
  const char* uri = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto num = [&](uint64_t& out) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      out = std::strtoull(argv[++i], &end, 10);
      return *end == '\0';
    };
    if (a == "--reads") {
      if (!num(reads)) return usage();
    } else if (a == "--block") {
      if (!num(block) || block == 0 || block > (32u << 20)) return usage();
    } else if (a == "--depth") {
      if (!num(depth) || depth == 0 || depth > 1024) return usage();
    } else if (a == "--seed") {
      if (!num(seed)) return usage();
    } else if (a == "--check" && i + 1 < argc) {
      check = argv[++i];
    } else if (a.rfind("--", 0) == 0 || uri) {
      return usage();
    } else {
      uri = argv[i];
    }
  }
  if (!uri) return usage();

  nbd_handle* h = nbd_create();
  if (!h || nbd_connect_uri(h, uri) == -1) {
    std::fprintf(stderr, "nbd_randread: %s\n", nbd_get_error());
    return 1;
  }
  int64_t size = nbd_get_size(h);
  if (size < static_cast<int64_t>(block)) {
    std::fprintf(stderr, "nbd_randread: the export (%" PRId64 " bytes) is smaller than one block\n", size);
    return 1;
  }
  FILE* ref = nullptr;
  if (check && !(ref = std::fopen(check, "rb"))) {
    std::perror(check);
    return 1;
  }

  std::mt19937_64 rng(seed);
  uint64_t blocks = static_cast<uint64_t>(size) / block;
  std::vector<Slot> slots(depth);
  for (auto& s : slots) s.buf.resize(block);
  std::vector<uint8_t> want(block);
  uint64_t issued = 0, finished = 0;
  int status = 0;

  auto start = std::chrono::steady_clock::now();
  while (finished < reads) {
    for (auto& s : slots) {
      if (s.busy && s.done) {
        s.busy = false;
        ++finished;
        if (s.error) {
          std::fprintf(stderr, "nbd_randread: read at %" PRIu64 ": %s\n", s.offset, std::strerror(s.error));
          status = 1;
        } else if (ref) {
          if (std::fseek(ref, static_cast<long>(s.offset), SEEK_SET) != 0 ||
              std::fread(want.data(), 1, block, ref) != block || std::memcmp(want.data(), s.buf.data(), block) != 0) {
            std::fprintf(stderr, "nbd_randread: %" PRIu64 " bytes at %" PRIu64 " differ from %s\n", block, s.offset,
                         check);
            status = 1;
          }
        }
      }
      if (!s.busy && issued < reads) {
        s.offset = (rng() % blocks) * block;
        s.busy = true;
        s.done = false;
        s.error = 0;
        nbd_completion_callback cb = {.callback = on_complete, .user_data = &s, .free = nullptr};
        if (nbd_aio_pread(h, s.buf.data(), block, s.offset, cb, 0) == -1) {
          std::fprintf(stderr, "nbd_randread: %s\n", nbd_get_error());
          return 1;
        }
        ++issued;
      }
    }
    if (finished < reads && nbd_aio_in_flight(h) > 0 && nbd_poll(h, -1) == -1) {
      std::fprintf(stderr, "nbd_randread: %s\n", nbd_get_error());
      return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("reads=%" PRIu64 " bytes=%" PRIu64 " seconds=%.6f reads_per_second=%.1f\n", reads, block, secs,
              static_cast<double>(reads) / secs);
  nbd_shutdown(h, 0);
  nbd_close(h);
  if (ref) std::fclose(ref);
  return status;
}
