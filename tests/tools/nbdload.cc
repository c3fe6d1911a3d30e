// nbdload: a bounded NBD load generator that checks every byte it reads. Each client is a thread with its own
// libnbd connection doing random reads (and, with --write-region, writes into a region it alone owns).
#include <libnbd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Target {
  std::string uri;
  unsigned clients = 0;
};

int usage() {
  std::fprintf(stderr,
               "usage: nbdload --ref RAW [--uri URI --clients N]... [--seconds S] [--max-ops N]\n"
               "               [--min-read B] [--max-read B] [--write-region BYTES]\n"
               "Connects N clients to each URI; every client reads random ranges and compares them with RAW.\n"
               "With --write-region, the last BYTES of the disk are split among the writable exports' clients;\n"
               "each writes its own slice and checks it against its own model. Bounded by seconds and ops.\n"
               "Prints one JSON line of totals; exit 0 only if every request succeeded and matched.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Target> targets;
  std::string ref_path;
  double seconds = 10;
  uint64_t max_ops = UINT64_MAX, min_read = 4096, max_read = 1 << 20, write_region = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--uri" && (v = next())) targets.push_back({v, 1});
    else if (a == "--clients" && (v = next()) && !targets.empty()) targets.back().clients = std::atoi(v);
    else if (a == "--ref" && (v = next())) ref_path = v;
    else if (a == "--seconds" && (v = next())) seconds = std::atof(v);
    else if (a == "--max-ops" && (v = next())) max_ops = std::strtoull(v, nullptr, 0);
    else if (a == "--min-read" && (v = next())) min_read = std::strtoull(v, nullptr, 0);
    else if (a == "--max-read" && (v = next())) max_read = std::strtoull(v, nullptr, 0);
    else if (a == "--write-region" && (v = next())) write_region = std::strtoull(v, nullptr, 0);
    else return usage();
  }
  if (targets.empty() || ref_path.empty() || min_read == 0 || max_read < min_read) return usage();
  std::ifstream in(ref_path, std::ios::binary);
  std::vector<char> ref((std::istreambuf_iterator<char>(in)), {});
  if (ref.size() < write_region + max_read) {
    std::fprintf(stderr, "nbdload: reference %s is too small\n", ref_path.c_str());
    return 2;
  }
  const uint64_t disk = ref.size();
  const uint64_t shared_end = disk - write_region;  // [0, shared_end) is read by everyone, never written
  unsigned total_clients = 0;
  for (auto& t : targets) total_clients += t.clients;
  const uint64_t slice = write_region ? (write_region / total_clients) & ~uint64_t(4095) : 0;

  std::atomic<uint64_t> ops{0}, bytes{0}, writes{0}, failures{0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  unsigned idx = 0;
  for (auto& t : targets) {
    for (unsigned c = 0; c < t.clients; ++c, ++idx) {
      threads.emplace_back([&, uri = t.uri, idx] {
        nbd_handle* h = nbd_create();
        if (!h || nbd_connect_uri(h, uri.c_str()) == -1) {
          std::fprintf(stderr, "nbdload: client %u: %s\n", idx, nbd_get_error());
          failures++;
          if (h) nbd_close(h);
          return;
        }
        if (static_cast<uint64_t>(nbd_get_size(h)) != disk) {
          std::fprintf(stderr, "nbdload: client %u: export size %lld, reference %llu\n", idx,
                       static_cast<long long>(nbd_get_size(h)), static_cast<unsigned long long>(disk));
          failures++;
        }
        bool can_write = slice > 0 && nbd_is_read_only(h) == 0;
        uint64_t my_off = shared_end + idx * slice;
        std::vector<char> model;
        if (can_write) model.assign(ref.begin() + my_off, ref.begin() + my_off + slice);
        std::mt19937_64 rng(idx * 1000003ull + 17);
        std::vector<char> buf;
        while (failures == 0 && std::chrono::steady_clock::now() < deadline && ops.fetch_add(1) < max_ops) {
          bool do_write = can_write && rng() % 4 == 0;
          bool own = can_write && rng() % 3 == 0;
          uint64_t len = min_read + rng() % (max_read - min_read + 1);
          if (do_write || own) {
            len = std::min<uint64_t>(len, slice);
            uint64_t off = my_off + (slice > len ? rng() % (slice - len) : 0);
            buf.resize(len);
            if (do_write) {
              for (auto& b : buf) b = static_cast<char>(rng());
              if (nbd_pwrite(h, buf.data(), len, off, 0) == -1) {
                std::fprintf(stderr, "nbdload: client %u write %llu+%llu: %s\n", idx,
                             (unsigned long long)off, (unsigned long long)len, nbd_get_error());
                failures++;
                break;
              }
              std::memcpy(model.data() + (off - my_off), buf.data(), len);
              writes++;
            } else {
              if (nbd_pread(h, buf.data(), len, off, 0) == -1 ||
                  std::memcmp(buf.data(), model.data() + (off - my_off), len) != 0) {
                std::fprintf(stderr, "nbdload: client %u: own slice %llu+%llu does not read back\n", idx,
                             (unsigned long long)off, (unsigned long long)len);
                failures++;
                break;
              }
            }
          } else {
            uint64_t off = rng() % (shared_end - len + 1);
            buf.resize(len);
            if (nbd_pread(h, buf.data(), len, off, 0) == -1) {
              std::fprintf(stderr, "nbdload: client %u read %llu+%llu: %s\n", idx, (unsigned long long)off,
                           (unsigned long long)len, nbd_get_error());
              failures++;
              break;
            }
            if (std::memcmp(buf.data(), ref.data() + off, len) != 0) {
              std::fprintf(stderr, "nbdload: client %u: wrong bytes at %llu+%llu\n", idx, (unsigned long long)off,
                           (unsigned long long)len);
              failures++;
              break;
            }
          }
          bytes += len;
        }
        if (can_write && failures == 0 && nbd_flush(h, 0) == -1) {
          std::fprintf(stderr, "nbdload: client %u flush: %s\n", idx, nbd_get_error());
          failures++;
        }
        nbd_shutdown(h, 0);
        nbd_close(h);
      });
    }
  }
  for (auto& t : threads) t.join();
  std::printf("{\"clients\": %u, \"requests\": %llu, \"writes\": %llu, \"bytes\": %llu, \"failures\": %llu}\n",
              total_clients, static_cast<unsigned long long>(std::min<uint64_t>(ops.load(), max_ops)),
              static_cast<unsigned long long>(writes.load()), static_cast<unsigned long long>(bytes.load()),
              static_cast<unsigned long long>(failures.load()));
  return failures == 0 ? 0 : 1;
}
