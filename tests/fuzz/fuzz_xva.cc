// Fuzzes the XVA source both ways in: the random-access index (tar headers, ova.xml, chunk and checksum members,
// first-read verification) and the front-to-back reader with its per-disk streams (plain, gzip or zstd input).
#include <fcntl.h>

#include "blockcore/xva/xva.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("image.xva", data, size);
  vdkit::OpenOptions o;
  o.format = "xva";
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);

  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  if (auto src = vdkit::xva::open_byte_source(fd, "fuzz", false); src.ok()) {
    if (auto r = vdkit::xva::XvaStreamReader::open(std::move(*src), "fuzz"); r.ok()) {
      // Each disk in turn; pieces of 4 MiB windows (what convert asks for), at most 64 of them.
      for (size_t d = 0; d < (*r)->manifest().disks.size() && d < 4; ++d) {
        auto s = vdkit::xva::disk_stream(**r, d);
        vdkit::StreamPiece piece;
        for (int i = 0; i < 64; ++i) {
          auto more = s->next(4u << 20, piece);
          if (!more.ok() || !*more) break;
        }
      }
    }
  }
  close(fd);
  return 0;
}
