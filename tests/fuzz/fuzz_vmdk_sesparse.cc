// Fuzzes the seSparse extent reader: the input is the extent; the harness writes the descriptor naming it.
#include <cstring>

#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::string desc = [] {
    const char* text =
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"seSparse\"\n\n"
        "# Extent description\nRW 32768 SESPARSE \"extent-sesparse.vmdk\"\n\n"
        "# The Disk Data Base\n#DDB\nddb.virtualHWVersion = \"14\"\n";
    return vdkit::fuzz::write_file("sesparse.vmdk", reinterpret_cast<const uint8_t*>(text), std::strlen(text));
  }();
  vdkit::fuzz::write_file("extent-sesparse.vmdk", data, size);
  vdkit::OpenOptions o;
  o.cache_bytes = 1 << 20;
  auto dev = vdkit::open_image(desc, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
