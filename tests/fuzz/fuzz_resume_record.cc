// Fuzzes read_resume_record: a hostile or damaged convert resume record is refused with a message, never trusted.
#include <cstdlib>

#include "blockcore/convert/resume_record.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("record.json", data, size);
  auto r = vdkit::read_resume_record(path);
  if (!r.ok()) return 0;
  // What a resumed run relies on: the flushed point inside the source, the last chunk ending there.
  if (r->flushed > r->source_size || r->last_chunk_offset + r->last_chunk_bytes != r->flushed ||
      r->header_bytes > r->source_size)
    std::abort();
  return 0;
}
