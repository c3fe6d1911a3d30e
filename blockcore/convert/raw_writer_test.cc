// Tests of TargetFile, the seekable target both file sinks write through (O_DIRECT where allowed, page cache else).
#include "blockcore/convert/raw_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

std::string temp_path(const char* tag) { return test::temp_path("vdkit-raw-writer-test", tag); }

std::vector<uint8_t> read_all(const std::string& p) { return test::read_file_bytes(p); }

// Writes aligned runs (direct when the file system allows), an aligned run
// with a short tail, an unaligned buffer and two runs that merge, and checks
// the bytes; with direct writes on and off.
void write_mixed_and_check(bool allow_direct) {
  std::string p = temp_path(allow_direct ? "direct" : "buffered");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  TargetIo io;
  io.direct = allow_direct;
  auto target = TargetFile::Open(fd, p, io);
  if (!allow_direct) {
    EXPECT_FALSE(target->direct());
  } else if (!target->direct()) {
    std::printf("note: %s takes no O_DIRECT writes (tmpfs?); only the page-cache path is tested\n", p.c_str());
  }

  ChunkBuffer buf(6 * 4096 + 100);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 31 + 7);
  const uint64_t M = 1 << 20;
  std::vector<IoRequest> reqs = {
      {-1, buf.data(), 4096, 0, true, 0},                       // aligned
      {-1, buf.data() + 4096, 4096, 4096, true, 0},             // adjacent: merges with the first
      {-1, buf.data() + 2 * 4096, 4096 + 100, M, true, 0},      // aligned, with a 100-byte tail
      {-1, buf.data() + 1, 4096, 2 * M + 4096, true, 0},        // buffer not aligned: page cache
      {-1, buf.data() + 5 * 4096, 4096, 3 * M + 512, true, 0},  // offset not aligned: page cache
  };
  ASSERT_TRUE(target->file().Truncate(4 * M).ok());
  Status st = target->write(reqs);
  ASSERT_TRUE(st.ok()) << st.message();
  target.reset();

  std::vector<uint8_t> want(4 * M, 0);
  for (const IoRequest& r : reqs) std::memcpy(want.data() + r.offset, r.buf, r.len);
  EXPECT_EQ(read_all(p), want);
  ::unlink(p.c_str());
}

TEST(TargetFile, DirectAndBufferedWritesLandWhereAsked) { write_mixed_and_check(true); }
TEST(TargetFile, PageCacheOnlyWhenDirectIsTurnedOff) { write_mixed_and_check(false); }

}  // namespace
}  // namespace vdkit
