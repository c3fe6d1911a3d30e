// Tests of the convert pipeline and its raw and qcow2 sinks (file and pipe layouts read back by the qcow2 reader).
#include "blockcore/convert/convert.h"
#include "blockcore/convert/convert_job.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "blockcore/convert/qcow2_writer.h"
#include "blockcore/convert/raw_writer.h"
#include "blockcore/testing/memory_device.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

// 12 MiB + 1000 bytes: random data, a data run of zeros, a zero extent, holes, an odd tail.
// Reads of a hole or zero extent fail the test: convert must never read them.
void forbid_reads_outside_data(MemoryDevice& d, std::vector<Extent> ex) {
  d.on_read = [ex](uint64_t offset, size_t len) {
    for (const auto& e : ex)
      if (e.type != ExtentType::kData && offset < e.offset + e.length && e.offset < offset + len)
        ADD_FAILURE() << "read of " << len << " bytes at " << offset << " touches a " << to_string(e.type);
  };
}

std::unique_ptr<MemoryDevice> make_disk() {
  const uint64_t M = 1 << 20;
  uint64_t size = 12 * M + 1000;
  std::vector<Extent> ex = {{0, 3 * M, ExtentType::kData},
                            {3 * M, 2 * M, ExtentType::kHole},
                            {5 * M, M, ExtentType::kZero},
                            {6 * M, 2 * M + 12345, ExtentType::kData},
                            {8 * M + 12345, 4 * M - 12345, ExtentType::kHole},
                            {12 * M, 1000, ExtentType::kData}};
  auto d = std::make_unique<MemoryDevice>(size, false);
  d->set_extents(ex);
  forbid_reads_outside_data(*d, ex);
  std::mt19937_64 rng(7);
  auto& b = d->bytes();
  for (uint64_t i = 0; i < 2 * M; ++i) b[i] = static_cast<uint8_t>(rng());
  // MiB 2 stays zeros though it is "data": zero detection must leave it out.
  for (uint64_t i = 6 * M + 777; i < 8 * M + 12345; ++i) b[i] = static_cast<uint8_t>(i % 251 + 1);
  for (uint64_t i = 12 * M; i < size; ++i) b[i] = 0x5a;
  return d;
}

std::string temp_path(const char* tag) { return test::temp_path("vdkit-convert-test", tag); }

std::vector<uint8_t> read_file(const std::string& p) { return test::read_file_bytes(p); }

std::vector<uint8_t> read_image(const std::string& p) {
  auto dev = open_image(p);
  EXPECT_TRUE(dev.ok()) << dev.status().message();
  if (!dev.ok()) return {};
  std::vector<uint8_t> out((*dev)->size());
  EXPECT_TRUE((*dev)->read(0, out).ok());
  return out;
}

TEST(Convert, RawFileKeepsHolesAndSkipsZeros) {
  auto disk = make_disk();
  std::string p = temp_path("raw");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  ASSERT_GE(fd, 0);
  auto sink = make_raw_sink(fd, p, true, false);
  ASSERT_TRUE(sink.ok());
  ConvertOptions o;
  auto st = convert(*disk, **sink, o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(read_file(p), disk->bytes());
  EXPECT_EQ(st->bytes_holes, (2u << 20) + (4u << 20) - 12345);
  // Written: the random 2 MiB, the patterned run (4 KiB blocks it touches), the tail.
  EXPECT_LT(st->bytes_written, disk->size() / 2);
  // The zero extent and the zero "data" MiB; counts are kept at 4 KiB granularity,
  // so a block that straddles a data/hole boundary may count on the data side.
  EXPECT_GE(st->bytes_zeros, (2u << 20) - 2 * kZeroBlock);
  EXPECT_LE(st->bytes_zeros, (2u << 20) + 2 * kZeroBlock);
  struct stat sb;
  ::fstat(fd, &sb);
  EXPECT_LT(static_cast<uint64_t>(sb.st_blocks) * 512, 6u << 20);
  ::close(fd);
  ::unlink(p.c_str());
}

TEST(Convert, ReadErrorStopsWithTheMessage) {
  auto disk = make_disk();
  disk->bad_offset = (6u << 20) + 100000;
  disk->bad_length = 1;
  std::string p = temp_path("err");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  auto sink = make_raw_sink(fd, p, true, false);
  ASSERT_TRUE(sink.ok());
  ConvertOptions o;
  auto st = convert(*disk, **sink, o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("injected read error at offset 6391456"), std::string::npos)
      << st.status().message();
  ::close(fd);
  ::unlink(p.c_str());
}

TEST(Convert, CancelGivesEcanceled) {
  auto disk = make_disk();
  std::string p = temp_path("cancel");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  auto sink = make_raw_sink(fd, p, true, false);
  std::atomic<bool> cancel{true};
  ConvertOptions o;
  o.cancel = &cancel;
  auto st = convert(*disk, **sink, o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), ECANCELED);
  ::close(fd);
  ::unlink(p.c_str());
}

// A sink whose "writes" go on reading each chunk until settle() retires it:
// it keeps a copy of every chunk it was given and, when it retires one, checks
// that the pipeline has not reused the buffer in the meantime.
class InFlightSink final : public ConvertSink {
 public:
  explicit InFlightSink(bool compress) : compress_(compress) {}
  uint64_t granularity() const override { return kZeroBlock; }
  bool wants_compression() const override { return compress_; }
  Status begin(uint64_t) override { return Status::Ok(); }
  Status put(const ConvertChunk& c) override {
    Put p;
    p.views.push_back({c.data.data(), std::vector<uint8_t>(c.data.begin(), c.data.begin() + c.length)});
    for (const auto& u : c.packed)
      if (!u.empty()) p.views.push_back({u.data(), u});
    if (p.views.size() > 1) ++puts_with_packed_;
    open_.push_back(std::move(p));
    max_open_ = std::max(max_open_, open_.size());
    return Status::Ok();
  }
  size_t puts_in_flight() const override { return 2; }
  Status settle(size_t n) override {
    for (; open_.size() > n; open_.erase(open_.begin())) {
      for (const auto& [at, copy] : open_.front().views)
        if (std::memcmp(at, copy.data(), copy.size()) != 0)
          ADD_FAILURE() << "a chunk's bytes changed while the sink could still be writing from them";
      ++retired_;
    }
    return Status::Ok();
  }
  Status finish(uint64_t) override {
    EXPECT_TRUE(open_.empty()) << "finish() with writes still in flight";
    return Status::Ok();
  }
  uint64_t bytes_written() const override { return 0; }
  size_t max_open_ = 0;
  size_t retired_ = 0;
  size_t puts_with_packed_ = 0;

 private:
  struct Put {
    std::vector<std::pair<const uint8_t*, std::vector<uint8_t>>> views;  // where the bytes were, and a copy
  };
  bool compress_;
  std::vector<Put> open_;
};

// Data, and compressed units (which a qcow2 sink writes from), both. 64 MiB
// of data, each chunk different, so buffers are recycled many times and
// a reused one no longer holds what was put.
TEST(Convert, BuffersOfPutsInFlightAreNotReusedBeforeSettle) {
  const uint64_t size = 64u << 20;
  for (bool compress : {false, true}) {
    auto disk = std::make_unique<MemoryDevice>(size, false);
    disk->set_extents({{0, size, ExtentType::kData}});
    auto& b = disk->bytes();
    for (uint64_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>((i >> 12) * 7 + (i >> 22) * 31 + (i & 0xff) % 5 + 1);
    InFlightSink sink(compress);
    ConvertOptions o;
    o.threads = 2;
    o.inflight_bytes = 0;  // as few buffers as the pipeline allows: reuse comes early
    auto st = convert(*disk, sink, o);
    ASSERT_TRUE(st.ok()) << st.status().message();
    EXPECT_EQ(sink.max_open_, 3u);  // two left in flight, and the one just put
    EXPECT_EQ(sink.retired_, size / kConvertChunk);
    EXPECT_EQ(compress, sink.puts_with_packed_ > 0);
  }
}

// Runs a sink writing into a pipe, collecting what comes out.
std::vector<uint8_t> through_pipe(const std::function<Status(int fd)>& run, Status& result) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::vector<uint8_t> out;
  std::thread reader([&] {
    uint8_t buf[65536];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  });
  result = run(fds[1]);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  return out;
}

struct Qcow2Case {
  uint64_t cluster;
  bool compress;
  Codec codec;
};

class Qcow2Target : public ::testing::TestWithParam<Qcow2Case> {};

TEST_P(Qcow2Target, FileAndPipeLayoutsReadBackAsTheSource) {
  auto disk = make_disk();
  const auto& c = GetParam();
  ConvertOptions o;
  o.format = TargetFormat::kQcow2;
  o.cluster_size = c.cluster;
  o.compress = c.compress;
  o.codec = c.codec;
  o.sync = false;
  // Seekable file.
  std::string p = temp_path("q");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  auto sink = make_sink(fd, p, true, o);
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  auto st = convert(*disk, **sink, o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  sink->reset();
  ::close(fd);
  auto file = read_file(p);
  ASSERT_GE(file.size(), 112u);
  EXPECT_EQ(std::memcmp(file.data(), "QFI\xfb\0\0\0\3", 8), 0);
  EXPECT_EQ(file[23], __builtin_ctzll(c.cluster));                      // cluster_bits
  EXPECT_EQ(file[99], 4);                                               // refcount_order
  EXPECT_EQ(file[104], c.compress && c.codec == Codec::kZstd ? 1 : 0);  // compression type
  EXPECT_EQ(read_image(p), disk->bytes());
  // Pipe: laid out in advance (two passes), same guest contents.
  Status pst;
  auto bytes = through_pipe(
      [&](int wfd) -> Status {
        auto s = make_sink(wfd, "pipe", false, o);
        if (!s.ok()) return s.status();
        EXPECT_TRUE((*s)->needs_plan());
        auto r = convert(*disk, **s, o);
        return r.ok() ? Status::Ok() : r.status();
      },
      pst);
  ASSERT_TRUE(pst.ok()) << pst.message();
  std::string pp = temp_path("qpipe");
  int pfd = ::open(pp.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  ASSERT_EQ(::write(pfd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(pfd);
  EXPECT_EQ(bytes.size() % c.cluster, 0u);
  EXPECT_EQ(read_image(pp), disk->bytes());
  ::unlink(p.c_str());
  ::unlink(pp.c_str());
}

INSTANTIATE_TEST_SUITE_P(Layouts, Qcow2Target,
                         ::testing::Values(Qcow2Case{65536, false, Codec::kDeflate},
                                           Qcow2Case{65536, true, Codec::kDeflate},
                                           Qcow2Case{65536, true, Codec::kZstd}, Qcow2Case{512, false, Codec::kDeflate},
                                           Qcow2Case{512, true, Codec::kDeflate},
                                           Qcow2Case{2u << 20, true, Codec::kZstd}));

TEST(Convert, PipeQcow2RefusesASourceThatChangesBetweenPasses) {
  auto disk = make_disk();
  // Cluster 0 turns to zeros once it has been read: the second pass differs. (The read that covers it sees the
  // old bytes; reads of other ranges may complete first on other workers, so counting reads would race.)
  disk->on_read = [d = disk.get()](uint64_t offset, size_t) {
    if (offset == 0) std::memset(d->bytes().data(), 0, 65536);
  };
  ConvertOptions o;
  o.format = TargetFormat::kQcow2;
  Status pst;
  through_pipe(
      [&](int wfd) -> Status {
        auto s = make_sink(wfd, "pipe", false, o);
        auto r = convert(*disk, **s, o);
        return r.ok() ? Status::Ok() : r.status();
      },
      pst);
  ASSERT_FALSE(pst.ok());
  EXPECT_NE(pst.message().find("second pass"), std::string::npos) << pst.message();
}

TEST(Convert, Qcow2WriterRejectsBadClusterSizes) {
  for (uint64_t cs : {0ull, 256ull, 3000ull, 4ull << 20}) {
    Qcow2WriterOptions q;
    q.cluster_size = cs;
    auto s = make_qcow2_sink(1, "x", true, q);
    EXPECT_FALSE(s.ok()) << cs;
  }
}

}  // namespace
}  // namespace vdkit
