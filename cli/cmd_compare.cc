// `vdkit compare`: do two images (any formats, or NBD exports) read the same? Like `qemu-img compare`.
#include <cstdio>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/base/checked.h"
#include "blockcore/base/codec.h"
#include "blockcore/sources/nbd_source.h"
#include "cli/command.h"

namespace vdkit::cli {
namespace {

constexpr int kExitError = 3;  // an image could not be opened or read (as qemu-img compare's 2 and 3)
constexpr uint64_t kCompareWindow = 1ull << 30;
constexpr uint64_t kCompareChunk = 4u << 20;

struct CompareArgs {
  ImageOptions image;
  std::string format_b;
  bool strict = false;
  bool quiet = false;
  bool output_json = false;
  std::string a, b;
};

Result<BlockDevicePtr> open_any(const std::string& path, OpenOptions o) {
  if (is_nbd_uri(path)) return open_nbd_source(path);
  return open_image(path, o);
}

// The first offset in [off, off+len) where dev does not read as zero, or UINT64_MAX.
Result<uint64_t> first_nonzero(BlockDevice& dev, uint64_t off, uint64_t len) {
  std::vector<uint8_t> buf;
  for (uint64_t w = off; w < off + len; w += kCompareWindow) {
    uint64_t wl = std::min(kCompareWindow, off + len - w);
    std::vector<Extent> ex;
    VDKIT_RETURN_IF_ERROR(dev.extents(w, wl, ex));
    for (const auto& e : ex) {
      if (e.type != ExtentType::kData) continue;
      for (uint64_t p = e.offset; p < e.offset + e.length; p += kCompareChunk) {
        uint64_t n = std::min(kCompareChunk, e.offset + e.length - p);
        buf.resize(n);
        VDKIT_RETURN_IF_ERROR(dev.read(p, buf));
        if (!is_all_zero(buf.data(), n))
          for (uint64_t i = 0; i < n; ++i)
            if (buf[i]) return p + i;
      }
    }
  }
  return UINT64_MAX;
}

// The first offset below `len` where a and b differ, or UINT64_MAX.
Result<uint64_t> first_difference(BlockDevice& a, BlockDevice& b, uint64_t len) {
  std::vector<uint8_t> ba, bb;
  for (uint64_t w = 0; w < len; w += kCompareWindow) {
    uint64_t wl = std::min(kCompareWindow, len - w);
    std::vector<Extent> ea, eb;
    VDKIT_RETURN_IF_ERROR(a.extents(w, wl, ea));
    VDKIT_RETURN_IF_ERROR(b.extents(w, wl, eb));
    size_t i = 0, j = 0;
    uint64_t pos = w;
    while (pos < w + wl) {
      while (ea[i].offset + ea[i].length <= pos) ++i;
      while (eb[j].offset + eb[j].length <= pos) ++j;
      uint64_t end = std::min(ea[i].offset + ea[i].length, eb[j].offset + eb[j].length);
      bool zero_a = ea[i].type != ExtentType::kData, zero_b = eb[j].type != ExtentType::kData;
      if (!(zero_a && zero_b)) {
        for (uint64_t p = pos; p < end; p += kCompareChunk) {
          uint64_t n = std::min(kCompareChunk, end - p);
          ba.resize(n);
          bb.resize(n);
          if (zero_a) std::fill(ba.begin(), ba.end(), 0);
          if (zero_b) std::fill(bb.begin(), bb.end(), 0);
          // Read both sides at once: the two images often sit on different devices.
          std::future<Status> fa;
          if (!zero_a) fa = std::async(std::launch::async, [&] { return a.read(p, ba); });
          Status sb = zero_b ? Status::Ok() : b.read(p, bb);
          Status sa = zero_a ? Status::Ok() : fa.get();
          VDKIT_RETURN_IF_ERROR(sa.Context("reading the first image at offset " + std::to_string(p)));
          VDKIT_RETURN_IF_ERROR(sb.Context("reading the second image at offset " + std::to_string(p)));
          if (std::memcmp(ba.data(), bb.data(), n) != 0)
            for (uint64_t k = 0; k < n; ++k)
              if (ba[k] != bb[k]) return p + k;
        }
      }
      pos = end;
    }
  }
  return UINT64_MAX;
}

int run_compare(const CompareArgs& args) {
  OpenOptions oa = args.image.open_options();
  OpenOptions ob = oa;
  ob.format = args.format_b;
  ob.xva_disk = 0;  // --xva-disk picks the disk of IMAGE_A
  auto da = open_any(args.a, oa);
  if (!da.ok()) {
    std::fprintf(stderr, "vdkit compare: %s\n", da.status().message().c_str());
    return kExitError;
  }
  auto db = open_any(args.b, ob);
  if (!db.ok()) {
    std::fprintf(stderr, "vdkit compare: %s\n", db.status().message().c_str());
    return kExitError;
  }
  BlockDevice& a = **da;
  BlockDevice& b = **db;
  if (!args.quiet) {
    warn("compare", chain_warnings(a.info()));
    warn("compare", chain_warnings(b.info()));
  }
  uint64_t sa = a.size(), sb = b.size();
  uint64_t common = std::min(sa, sb);
  bool size_mismatch = sa != sb;
  auto report = [&](bool same, uint64_t at, const std::string& why) {
    if (args.output_json) {
      nlohmann::json j;
      j["identical"] = same;
      j["size-a"] = sa;
      j["size-b"] = sb;
      if (!same && at != UINT64_MAX) j["mismatch-offset"] = at;
      if (!why.empty()) j["reason"] = why;
      std::cout << j.dump(4) << "\n";
    } else if (!args.quiet) {
      if (same)
        std::printf("Images are identical.\n");
      else if (at != UINT64_MAX)
        std::printf("Content mismatch at offset %llu!\n", (unsigned long long)at);
      else
        std::printf("%s\n", why.c_str());
    }
    return same ? kExitOk : kExitFailure;
  };
  if (size_mismatch && args.strict) return report(false, UINT64_MAX, "Strict mode: Image size mismatch!");
  if (size_mismatch && !args.quiet && !args.output_json) std::printf("Warning: Image size mismatch!\n");
  auto diff = first_difference(a, b, common);
  if (!diff.ok()) {
    std::fprintf(stderr, "vdkit compare: %s\n", diff.status().message().c_str());
    return kExitError;
  }
  // Offsets are reported at 512-byte sector granularity, as qemu-img compare does.
  if (*diff != UINT64_MAX) return report(false, align_down(*diff, 512), "");
  if (size_mismatch) {
    BlockDevice& longer = sa > sb ? a : b;
    auto nz = first_nonzero(longer, common, std::max(sa, sb) - common);
    if (!nz.ok()) {
      std::fprintf(stderr, "vdkit compare: %s\n", nz.status().message().c_str());
      return kExitError;
    }
    if (*nz != UINT64_MAX) return report(false, align_down(*nz, 512), "");
  }
  return report(true, UINT64_MAX, "");
}

CommandRegistrar reg({"compare", "Check whether two images read the same, across formats",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<CompareArgs>();
                        sub.description(
                            "Compare what two images read as, whatever their formats (VMDK, qcow2, raw, or an NBD\n"
                            "URI such as nbd+unix:///?socket=PATH). Ranges that both images report as holes or\n"
                            "zeros are not read. As with `qemu-img compare`, images of different sizes compare\n"
                            "equal when the extra part of the larger reads as zeros (unless --strict), and the\n"
                            "first difference is reported as \"Content mismatch at offset N!\" where N is the start\n"
                            "of the first differing 512-byte sector. -f names the format of IMAGE_A, -F that of\n"
                            "IMAGE_B; each is probed from its content otherwise. --xva-disk N picks the disk of\n"
                            "IMAGE_A when it is an XVA export (IMAGE_B is read as its disk 0).\n"
                            "\n"
                            "Exit status: 0 when the images read the same; 1 when they differ; 2 for bad usage;\n"
                            "3 when an image cannot be opened or read.");
                        a->image.add_to(sub);
                        sub.add_option("-F,--format-b", a->format_b, "Format of the second image instead of probing")
                            ->check(CLI::IsMember(known_formats()));
                        sub.add_flag("-s,--strict", a->strict, "Images of different sizes are different");
                        sub.add_flag("-q,--quiet", a->quiet, "Print nothing; only the exit status tells");
                        sub.add_flag("--output-json", a->output_json,
                                     "Print {identical, size-a, size-b, mismatch-offset} as JSON");
                        sub.add_option("IMAGE_A", a->a, "First image or NBD URI")->required();
                        sub.add_option("IMAGE_B", a->b, "Second image or NBD URI")->required();
                        return [a] { return run_compare(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
