// Fuzzes the initramfs reader: stacked cpio archives (early microcode in front), gzip/xz/zstd/lz4 through libarchive.
#include "fixups/initramfs/reader.h"
#include "tests/fuzz/fuzz_rewriter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto names = vdkit::fixups::list_initramfs(vdkit::fuzz::as_text(data, size));
  (void)names;
  return 0;
}
