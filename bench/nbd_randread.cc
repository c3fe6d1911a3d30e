// nbd_randread: a small libnbd client issuing aligned random reads with a fixed queue depth, for bench/nbd.
#include <libnbd.h>

#include <algorithm>
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
               "usage: nbd_randread [--reads N] [--block BYTES] [--depth N] [--seed N] [--data-only] [--check RAW] URI\n"
               "Reads N random BYTES-aligned blocks of BYTES (default 20000 reads of 4096) from the NBD export at\n"
               "URI, keeping --depth requests in flight (default 16) on one connection. Prints one line:\n"
               "  reads=N bytes=B seconds=S reads_per_second=R\n"
               "--data-only picks blocks only inside the extents base:allocation reports as data (asked before\n"
               "the clock starts), so a sparse disk's holes do not dilute the measurement.\n"
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

// Data extents, in blocks, with running totals for picking a block uniformly among them.
struct DataRuns {
  std::vector<uint64_t> first_block, cumulative;  // cumulative[i] = blocks in runs 0..i
  uint64_t block = 4096;
  uint64_t reached = 0;  // end of the last extent reported
};

int on_extents(void* user_data, const char* context, uint64_t offset, uint32_t* entries, size_t n, int* error) {
  auto* runs = static_cast<DataRuns*>(user_data);
  if (std::strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    uint64_t len = entries[i];
    bool data = (entries[i + 1] & (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO)) == 0;
    uint64_t first = (offset + runs->block - 1) / runs->block, end = (offset + len) / runs->block;
    if (data && end > first) {
      runs->first_block.push_back(first);
      runs->cumulative.push_back((runs->cumulative.empty() ? 0 : runs->cumulative.back()) + (end - first));
    }
    offset += len;
  }
  runs->reached = offset;
  return 0;
}

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
  bool data_only = false;
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
    } else if (a == "--data-only") {
      data_only = true;
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
  if (h && data_only) nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION);
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
  DataRuns runs;
  runs.block = block;
  if (data_only) {
    if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
      std::fprintf(stderr, "nbd_randread: --data-only: the server does not offer base:allocation\n");
      return 1;
    }
    for (uint64_t pos = 0; pos < static_cast<uint64_t>(size);) {
      uint64_t want = std::min<uint64_t>(static_cast<uint64_t>(size) - pos, 1u << 30);
      nbd_extent_callback cb = {.callback = on_extents, .user_data = &runs, .free = nullptr};
      if (nbd_block_status(h, want, pos, cb, 0) == -1) {
        std::fprintf(stderr, "nbd_randread: block status: %s\n", nbd_get_error());
        return 1;
      }
      // Servers may answer with less than asked; go on from where the answer ended.
      if (runs.reached <= pos) {
        std::fprintf(stderr, "nbd_randread: block status at %" PRIu64 " made no progress\n", pos);
        return 1;
      }
      pos = runs.reached;
    }
    if (runs.cumulative.empty()) {
      std::fprintf(stderr, "nbd_randread: --data-only: the export has no data extents\n");
      return 1;
    }
  }
  auto pick_block = [&]() -> uint64_t {
    if (!data_only) return rng() % blocks;
    uint64_t k = rng() % runs.cumulative.back();
    size_t i = static_cast<size_t>(std::upper_bound(runs.cumulative.begin(), runs.cumulative.end(), k) -
                                   runs.cumulative.begin());
    uint64_t before = i ? runs.cumulative[i - 1] : 0;
    return runs.first_block[i] + (k - before);
  };
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
        s.offset = pick_block() * block;
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
