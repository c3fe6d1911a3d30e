// Fuzzes the VMDK sparse and streamOptimized paths: header, embedded descriptor, grain directory and tables,
// grain markers and footer.
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("image.vmdk", data, size);
  vdkit::OpenOptions o;
  o.format = "vmdk";
  o.cache_bytes = 1 << 20;
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
