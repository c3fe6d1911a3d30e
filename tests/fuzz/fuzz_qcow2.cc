// Fuzzes the qcow2 driver: header, extensions, L1/L2 and refcount walking, compressed cluster reads.
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("image.qcow2", data, size);
  vdkit::OpenOptions o;
  o.format = "qcow2";
  o.cache_bytes = 1 << 20;
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
