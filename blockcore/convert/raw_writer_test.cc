// Tests of TargetFile, the seekable target both file sinks write through (O_DIRECT where allowed, page cache else).
#include "blockcore/convert/raw_writer.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <span>

#include "blockcore/testing/fault_io.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

std::string temp_path(const char* tag) { return test::temp_path("vdkit-raw-writer-test", tag); }

std::vector<uint8_t> read_all(const std::string& p) { return test::read_file_bytes(p); }

// Writes aligned runs (direct when the file system allows), an aligned run
// with a short tail, an unaligned buffer and two runs that merge, and checks
// the bytes; with direct writes on and off, at once or as two writes left in
// flight (write_async) and then settled.
void write_mixed_and_check(bool allow_direct, bool async = false) {
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
  if (async) {
    std::span<const IoRequest> all(reqs);
    Status st = target->write_async(all.first(3));
    ASSERT_TRUE(st.ok()) << st.message();
    st = target->write_async(all.subspan(3));
    ASSERT_TRUE(st.ok()) << st.message();
    st = target->settle(0);
    ASSERT_TRUE(st.ok()) << st.message();
  } else {
    Status st = target->write(reqs);
    ASSERT_TRUE(st.ok()) << st.message();
  }

  // Read while the target is still open: destroying it would also wait for writes in flight.
  std::vector<uint8_t> want(4 * M, 0);
  for (const IoRequest& r : reqs) std::memcpy(want.data() + r.offset, r.buf, r.len);
  EXPECT_EQ(read_all(p), want);
  target.reset();
  ::unlink(p.c_str());
}

TEST(TargetFile, DirectAndBufferedWritesLandWhereAsked) { write_mixed_and_check(true); }
TEST(TargetFile, PageCacheOnlyWhenDirectIsTurnedOff) { write_mixed_and_check(false); }
TEST(TargetFile, WritesLeftInFlightLandWhereAsked) { write_mixed_and_check(true, true); }
TEST(TargetFile, WritesLeftInFlightThroughThePageCache) { write_mixed_and_check(false, true); }

// A write error of a call left in flight comes back from the settle() that
// retires it. The error: a write past the process's file size limit (EFBIG).
TEST(TargetFile, ErrorOfAWriteInFlightComesBackFromSettle) {
  std::string p = temp_path("efbig");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto target = TargetFile::Open(fd, p, TargetIo{});
  ChunkBuffer buf(3 * 4096, 0x11);
  const uint64_t M = 1 << 20;
  IoRequest fine{-1, buf.data(), 4096, 0, true, 0};
  IoRequest beyond{-1, buf.data() + 4096, 8192, 2 * M, true, 0};
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit small = old;
  small.rlim_cur = M;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status first = target->write_async(std::span<const IoRequest>(&fine, 1));
  Status second = target->write_async(std::span<const IoRequest>(&beyond, 1));
  Status settle_one = target->settle(1);
  Status settle_all = target->settle(0);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(first.ok()) << first.message();
  EXPECT_TRUE(settle_one.ok()) << settle_one.message();
  // With direct writes the error is the settle's; through the page cache, the write's own.
  Status st = target->direct() ? settle_all : second;
  EXPECT_EQ(st.code(), EFBIG) << st.message();
  EXPECT_NE(st.message().find("offset 2097152"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(p), std::string::npos) << st.message();
  target.reset();
  ::unlink(p.c_str());
}

// A direct write the file system refuses with EINVAL (injected here) is done
// again through the page cache, and every later write goes there too, also
// when the refusal comes back from settle().
TEST(TargetFile, RefusedDirectWriteInFlightIsRedoneThroughThePageCache) {
  std::string p = temp_path("einval");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto rules = FaultInjectingEngine::ParseRules("write-error:" + p + ":0:4096:22:1");
  ASSERT_TRUE(rules.ok()) << rules.status().message();
  FaultInjectingEngine faulty(default_io_engine());
  for (const auto& r : *rules) faulty.add_rule(r);
  TargetIo io;
  io.direct_engine = &faulty;
  auto target = TargetFile::Open(fd, p, io);
  if (!target->direct()) {
    std::printf("note: %s takes no O_DIRECT writes (tmpfs?); nothing to refuse\n", p.c_str());
    ::unlink(p.c_str());
    return;
  }
  const uint64_t M = 1 << 20;
  ASSERT_TRUE(target->file().Truncate(2 * M).ok());
  ChunkBuffer a(8192, 0x61), b(8192, 0x62), c(8192, 0x63);
  IoRequest ra{-1, a.data(), a.size(), 0, true, 0}, rb{-1, b.data(), b.size(), M, true, 0};
  IoRequest rc{-1, c.data(), c.size(), M + 65536, true, 0};
  ASSERT_TRUE(target->write_async(std::span<const IoRequest>(&ra, 1)).ok());
  ASSERT_TRUE(target->write_async(std::span<const IoRequest>(&rb, 1)).ok());
  Status st = target->settle(0);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(target->direct());
  ASSERT_TRUE(target->write_async(std::span<const IoRequest>(&rc, 1)).ok());
  ASSERT_TRUE(target->settle(0).ok());
  std::vector<uint8_t> want(2 * M, 0);
  for (const IoRequest* r : {&ra, &rb, &rc}) std::memcpy(want.data() + r->offset, r->buf, r->len);
  EXPECT_EQ(read_all(p), want);
  target.reset();
  ::unlink(p.c_str());
}

}  // namespace
}  // namespace vdkit
