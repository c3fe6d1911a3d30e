// Fuzzes the VHD driver: footer and its copy at offset 0, dynamic header, BAT, sector bitmaps and parent locators
// (a differencing input looks for its parent in the scratch folder, where there is none, or itself: a loop).
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("image.vhd", data, size);
  vdkit::OpenOptions o;
  o.format = "vhd";
  o.cache_bytes = 1 << 20;
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
