// convert_limit: what the hardware allows for one conversion, the floor vdkit's time is measured against.
//
//   convert_limit SOURCE TARGET_FILE BYTES [deflate]
//
// 1. inflate: every compressed grain of SOURCE, a streamOptimized VMDK or a deflate-compressed qcow2 (already in
//    memory: the file is read first, untimed), inflated with libdeflate on all cores, output thrown away: the CPU
//    floor of reading the source. Any other source has nothing to inflate (0 s).
//    With `deflate` (a raw SOURCE converted into a compressed qcow2): instead, every 64 KiB cluster of SOURCE that
//    is not all zeros compressed with libdeflate at vdkit's default level (kDefaultDeflateLevel) on all cores: the
//    CPU floor of writing the compressed target.
// 2. write: BYTES bytes (the target's allocated size, as the bench measured it) written from memory to TARGET_FILE
//    with O_DIRECT in 4 MiB writes, then fdatasync: the disk floor of writing the target.
// 3. together: 1 and 2 at the same time (on a VM the host's side of the writes shares the cores with inflating).
// Prints one JSON object: inflate, write and together seconds, grains, inflated bytes, and the larger of 1 and 2.
// The markers are parsed with blockcore's own checks (vmdk_format.h), so a damaged file is an error, not a crash.
#include <fcntl.h>
#include <libdeflate.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "blockcore/base/bytes.h"
#include "blockcore/base/codec.h"
#include "blockcore/vmdk/vmdk_format.h"

namespace {

constexpr size_t kWriteChunk = 4u << 20;
constexpr size_t kDirectAlign = 4096;
constexpr uint64_t kClusterBytes = 64u << 10;  // qcow2's default cluster, what `convert -c` compresses

struct Grain {
  uint64_t offset;  // of the compressed bytes in the file
  uint32_t size;
};

// What to inflate: the compressed pieces, the size each inflates to, and whether they carry zlib framing (VMDK) or
// are raw deflate (qcow2).
struct Work {
  std::vector<Grain> grains;
  uint64_t unit = 0;
  bool zlib = false;
};

// The grain markers of a streamOptimized VMDK, from the end of the header's overhead to the end-of-stream marker.
std::string walk_stream_vmdk(const std::vector<uint8_t>& file, const std::string& src, Work& w) {
  auto h = vdkit::vmdk::parse_sparse_header(file, src);
  if (!h.ok()) return h.status().message();
  if (!h->has_markers() || !h->compressed()) return "";  // a sparse VMDK without compression: nothing to inflate
  w.unit = h->grain_bytes();
  w.zlib = true;
  if (w.unit == 0 || w.unit > (1u << 24)) return "grain size out of range";
  for (uint64_t at = h->overhead * 512; at + vdkit::vmdk::kGrainMarkerBytes <= file.size();) {
    auto m = vdkit::vmdk::parse_marker(
        std::span<const uint8_t>(file).subspan(at, std::min<size_t>(16, file.size() - at)), src, at);
    if (!m.ok()) return m.status().message();
    if (m->is_grain()) {
      if (m->size > vdkit::vmdk::max_compressed_grain_bytes(w.unit) ||
          at + vdkit::vmdk::kGrainMarkerBytes + m->size > file.size())
        return "grain at byte " + std::to_string(at) + " runs past the file";
      w.grains.push_back({at + vdkit::vmdk::kGrainMarkerBytes, m->size});
      at += (vdkit::vmdk::kGrainMarkerBytes + m->size + 511) / 512 * 512;
    } else {
      if (m->type == static_cast<uint32_t>(vdkit::vmdk::MarkerType::kEndOfStream)) break;
      at += vdkit::vmdk::kMetadataMarkerBytes + m->value * 512;
    }
  }
  return "";
}

// The compressed clusters of a qcow2 (L1 -> L2 -> entries with the compressed bit), deflate only.
std::string walk_qcow2(const std::vector<uint8_t>& file, Work& w) {
  using vdkit::load_be32;
  using vdkit::load_be64;
  if (file.size() < 104) return "qcow2 header truncated";
  const uint32_t version = load_be32(&file[4]), cluster_bits = load_be32(&file[20]);
  const uint32_t l1_size = load_be32(&file[36]);
  const uint64_t l1_off = load_be64(&file[40]);
  if (cluster_bits < 9 || cluster_bits > 21) return "qcow2 cluster_bits out of range";
  if (version >= 3) {
    const uint64_t incompat = load_be64(&file[72]);
    if (incompat & (1u << 4)) return "qcow2 with extended L2 entries is not handled here";
    if ((incompat & (1u << 3)) && file.size() > 104 && file[104] != 0) return "qcow2 with zstd clusters: deflate only";
  }
  w.unit = uint64_t{1} << cluster_bits;
  const uint64_t l2_entries = w.unit / 8;
  const int x = 62 - static_cast<int>(cluster_bits - 8);
  const uint64_t offset_mask = (uint64_t{1} << x) - 1, sectors_mask = (uint64_t{1} << (cluster_bits - 8)) - 1;
  for (uint32_t i = 0; i < l1_size; ++i) {
    if (l1_off + 8ull * (i + 1) > file.size()) return "qcow2 L1 table runs past the file";
    const uint64_t l2_off = load_be64(&file[l1_off + 8ull * i]) & 0x00fffffffffffe00ull;
    if (!l2_off) continue;
    if (l2_off + w.unit > file.size()) return "qcow2 L2 table runs past the file";
    for (uint64_t j = 0; j < l2_entries; ++j) {
      const uint64_t e = load_be64(&file[l2_off + 8 * j]);
      if (!(e & (1ull << 62))) continue;
      const uint64_t host = e & offset_mask;
      const uint64_t size = (((e >> x) & sectors_mask) + 1) * 512 - (host & 511);
      if (host >= file.size()) return "qcow2 compressed cluster past the file";
      w.grains.push_back({host, static_cast<uint32_t>(std::min<uint64_t>(size, file.size() - host))});
    }
  }
  return "";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int die(const std::string& msg) {
  std::fprintf(stderr, "convert_limit: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 5 && std::strcmp(argv[4], "deflate") == 0)) {
    std::fprintf(stderr, "usage: convert_limit SOURCE TARGET_FILE BYTES [deflate]\n");
    return 2;
  }
  const bool deflate = argc == 5;
  const std::string src = argv[1], dst = argv[2];
  const uint64_t bytes = std::strtoull(argv[3], nullptr, 10);

  // The source in memory (untimed): the limit is about CPU and disk, not about reading the source.
  std::vector<uint8_t> file;
  {
    int fd = ::open(src.c_str(), O_RDONLY);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0) return die("cannot open " + src);
    file.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < file.size()) {
      ssize_t n = ::pread(fd, file.data() + done, file.size() - done, static_cast<off_t>(done));
      if (n <= 0) return die("cannot read " + src);
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }
  Work work;
  std::string err;
  if (deflate) {
    // Raw source: the clusters a compressed qcow2 would hold (all-zero ones become holes, not compressed).
    work.unit = kClusterBytes;
    for (uint64_t at = 0; at < file.size(); at += kClusterBytes) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kClusterBytes, file.size() - at));
      const uint8_t* p = file.data() + at;
      if (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0) continue;
      work.grains.push_back({at, n});
    }
  } else if (file.size() >= 4 && std::memcmp(file.data(), "KDMV", 4) == 0)
    err = walk_stream_vmdk(file, src, work);
  else if (file.size() >= 4 && std::memcmp(file.data(), "QFI\xfb", 4) == 0)
    err = walk_qcow2(file, work);
  if (!err.empty()) return die(src + ": " + err);
  const std::vector<Grain>& grains = work.grains;
  const uint64_t grain_bytes = std::max<uint64_t>(work.unit, 512);

  // 1. Inflate on every core.
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<uint64_t> inflated{0};
  std::atomic<bool> bad{false};
  auto inflate_all = [&] {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    inflated = 0;
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        libdeflate_decompressor* d = libdeflate_alloc_decompressor();
        libdeflate_compressor* c = deflate ? libdeflate_alloc_compressor(vdkit::kDefaultDeflateLevel) : nullptr;
        std::vector<uint8_t> out(grain_bytes);
        uint64_t mine = 0;
        for (size_t i; (i = next.fetch_add(1)) < grains.size();) {
          if (c) {
            // A cluster that does not shrink is stored as it is: a 0 from libdeflate is not a failure.
            mine += libdeflate_deflate_compress(c, file.data() + grains[i].offset, grains[i].size, out.data(),
                                                out.size());
            continue;
          }
          size_t got = 0;
          // qcow2's compressed size runs to the sector end: raw deflate stops at its own end marker.
          const libdeflate_result r =
              work.zlib ? libdeflate_zlib_decompress(d, file.data() + grains[i].offset, grains[i].size, out.data(),
                                                     out.size(), &got)
                        : libdeflate_deflate_decompress_ex(d, file.data() + grains[i].offset, grains[i].size,
                                                           out.data(), out.size(), nullptr, &got);
          if (r != LIBDEFLATE_SUCCESS && r != LIBDEFLATE_SHORT_OUTPUT) bad = true;
          mine += got;
        }
        inflated += mine;
        libdeflate_free_decompressor(d);
        if (c) libdeflate_free_compressor(c);
      });
    }
    for (auto& t : pool) t.join();
  };
  auto t0 = std::chrono::steady_clock::now();
  inflate_all();
  const double inflate_s = seconds_since(t0);
  if (bad) return die("a grain did not inflate");

  // 2. Write BYTES with O_DIRECT from memory.
  void* buf = nullptr;
  if (posix_memalign(&buf, kDirectAlign, kWriteChunk) != 0) return die("out of memory");
  std::memset(buf, 0xa5, kWriteChunk);
  auto write_all = [&]() -> bool {
    int fd = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) return false;
    for (uint64_t done = 0; done < bytes;) {
      size_t n = static_cast<size_t>(
          std::min<uint64_t>(kWriteChunk, (bytes - done + kDirectAlign - 1) / kDirectAlign * kDirectAlign));
      ssize_t w = ::pwrite(fd, buf, n, static_cast<off_t>(done));
      if (w <= 0) {
        ::close(fd);
        return false;
      }
      done += static_cast<uint64_t>(w);
    }
    ::fdatasync(fd);
    ::close(fd);
    ::unlink(dst.c_str());
    return true;
  };
  t0 = std::chrono::steady_clock::now();
  if (!write_all()) return die("cannot write " + dst + " with O_DIRECT");
  const double write_s = seconds_since(t0);

  // 3. Both at once: on a VM the host's work for the guest's writes runs on the same cores as the inflating
  // threads, so the two overlap less than the larger of 1 and 2 suggests. This is the floor a one-pass converter
  // that inflates and writes can reach on this machine.
  bool wrote = false;
  t0 = std::chrono::steady_clock::now();
  {
    std::thread writer([&] { wrote = write_all(); });
    inflate_all();
    writer.join();
  }
  const double together_s = seconds_since(t0);
  std::free(buf);
  if (!wrote) return die("cannot write " + dst + " with O_DIRECT");

  std::printf(
      "{\"grains\": %zu, \"%s-bytes\": %llu, \"threads\": %u, \"cpu-seconds\": %.3f, "
      "\"write-bytes\": %llu, \"write-seconds\": %.3f, \"together-seconds\": %.3f, \"limit-seconds\": %.3f}\n",
      grains.size(), deflate ? "deflated" : "inflated", static_cast<unsigned long long>(inflated.load()), threads,
      inflate_s,
      static_cast<unsigned long long>(bytes), write_s, together_s, std::max(inflate_s, write_s));
  return 0;
}
