// Fuzzes the VMDK text descriptor parser and extent resolution: the input is a descriptor file placed beside a
// flat extent "flat.bin" and a sparse extent "sparse.vmdk" it may name.
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool ready = [] {
    std::vector<uint8_t> flat(1 << 20, 0x5a);
    vdkit::fuzz::write_file("flat.bin", flat.data(), flat.size());
    return true;
  }();
  (void)ready;
  std::string path = vdkit::fuzz::write_file("disk.vmdk", data, size);
  vdkit::OpenOptions o;
  o.format = "vmdk";
  o.cache_bytes = 1 << 20;
  o.max_chain_depth = 4;
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
