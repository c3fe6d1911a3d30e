// Fuzzes the VHDX driver: file identifier, header pair (CRC-32C, sequence numbers), region tables, metadata items
// and parent locator, BAT states and sector bitmaps (a differencing input finds no parent, or itself: a loop), and
// the log: a header with a LogGuid sends the log region through the scan for the active sequence (entry headers,
// descriptors, data sectors, CRC-32C, wrap-around) and the replay into memory (corpus: pending-log.vhdx).
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("image.vhdx", data, size);
  vdkit::OpenOptions o;
  o.format = "vhdx";
  o.cache_bytes = 1 << 20;
  auto dev = vdkit::open_image(path, o);
  if (dev.ok()) vdkit::fuzz::exercise(**dev);
  return 0;
}
