// Tests for both I/O engines (io_uring and pread/pwrite), File, and the fault-injecting engine.
#include "blockcore/io/io_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <numeric>

#include "blockcore/testing/fault_io.h"
#include "blockcore/sources/image.h"

namespace vdkit {
namespace {

class TempFile {
 public:
  explicit TempFile(size_t size) {
    char tmpl[] = "/tmp/vdkit-io-test.XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    data_.resize(size);
    for (size_t i = 0; i < size; ++i) data_[i] = static_cast<uint8_t>(i * 31 + (i >> 12));
    EXPECT_EQ(::write(fd, data_.data(), size), static_cast<ssize_t>(size));
    ::close(fd);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  const std::vector<uint8_t>& data() const { return data_; }

 private:
  std::string path_;
  std::vector<uint8_t> data_;
};

std::vector<std::unique_ptr<IoEngine>> engines() {
  std::vector<std::unique_ptr<IoEngine>> v;
  v.push_back(make_sync_engine());
  if (auto u = make_uring_engine()) v.push_back(std::move(u));
  else ADD_FAILURE() << "io_uring is not usable on this machine; the uring path is untested";
  return v;
}

TEST(IoEngine, BatchOfManyReadsMatchesFile) {
  TempFile f(3 << 20);
  for (auto& eng : engines()) {
    auto file = File::Open(f.path(), File::Mode::kReadOnly, eng.get());
    ASSERT_TRUE(file.ok());
    // More requests than ring entries, odd sizes and offsets.
    std::vector<std::vector<uint8_t>> bufs(200);
    std::vector<IoRequest> reqs(200);
    for (size_t i = 0; i < reqs.size(); ++i) {
      bufs[i].resize(1000 + i * 37);
      reqs[i].buf = bufs[i].data();
      reqs[i].len = bufs[i].size();
      reqs[i].offset = i * 15013;
    }
    ASSERT_TRUE((*file)->Submit(reqs).ok()) << eng->name();
    for (size_t i = 0; i < reqs.size(); ++i) {
      ASSERT_EQ(reqs[i].result, static_cast<ssize_t>(reqs[i].len)) << eng->name();
      ASSERT_EQ(0, memcmp(bufs[i].data(), f.data().data() + reqs[i].offset, reqs[i].len)) << eng->name();
    }
  }
}

TEST(IoEngine, ReadPastEndStopsShortAndReadExactNamesOffset) {
  TempFile f(10000);
  for (auto& eng : engines()) {
    auto file = File::Open(f.path(), File::Mode::kReadOnly, eng.get());
    ASSERT_TRUE(file.ok());
    std::vector<uint8_t> buf(4096);
    auto n = (*file)->ReadSome(8000, buf.data(), buf.size());
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 2000u) << eng->name();
    Status st = (*file)->ReadExact(8000, buf.data(), buf.size());
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("offset 8000"), std::string::npos) << st.message();
  }
}

TEST(IoEngine, WritesLandAndReadBack) {
  TempFile f(65536);
  for (auto& eng : engines()) {
    auto file = File::Open(f.path(), File::Mode::kReadWrite, eng.get());
    ASSERT_TRUE(file.ok());
    std::vector<uint8_t> w(5000, 0xAB), r(5000);
    ASSERT_TRUE((*file)->WriteExact(1234, w.data(), w.size()).ok());
    ASSERT_TRUE((*file)->ReadExact(1234, r.data(), r.size()).ok());
    EXPECT_EQ(w, r) << eng->name();
    EXPECT_TRUE((*file)->Sync().ok());
  }
}

TEST(IoEngine, BadDescriptorIsAnErrorNotACrash) {
  for (auto& eng : engines()) {
    uint8_t b[16];
    IoRequest r{-1, b, sizeof b, 0, false, 0};
    Status st = eng->submit(std::span<IoRequest>(&r, 1));
    EXPECT_FALSE(st.ok()) << eng->name();
    EXPECT_EQ(st.code(), EBADF) << eng->name();
    EXPECT_EQ(r.result, -EBADF);
  }
}

TEST(IoEngine, OpenMissingFileNamesIt) {
  auto f = File::Open("/nonexistent/vdkit/x.img");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), ENOENT);
  EXPECT_NE(f.status().message().find("/nonexistent/vdkit/x.img"), std::string::npos);
}

TEST(FaultInjectingEngine, InjectsEachKindOnlyWhereAsked) {
  TempFile f(1 << 20);
  auto sync = make_sync_engine();
  FaultInjectingEngine fault(*sync);
  auto file = File::Open(f.path(), File::Mode::kReadWrite, &fault);
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> buf(4096);
  fault.add_rule({FaultInjectingEngine::Kind::kReadError, EIO, -1, 65536, 4096, 0, 1, ""});
  EXPECT_TRUE((*file)->ReadExact(0, buf.data(), buf.size()).ok());
  Status st = (*file)->ReadExact(65536, buf.data(), buf.size());
  EXPECT_EQ(st.code(), EIO);
  EXPECT_TRUE((*file)->ReadExact(65536, buf.data(), buf.size()).ok()) << "rule fires once";

  fault.add_rule({FaultInjectingEngine::Kind::kShortRead, 0, -1, 0, 100, 10, 1, ""});
  EXPECT_FALSE((*file)->ReadExact(0, buf.data(), buf.size()).ok());

  fault.add_rule({FaultInjectingEngine::Kind::kWriteError, ENOSPC, -1, 0, 1 << 20, 0, 1, ""});
  EXPECT_EQ((*file)->WriteExact(0, buf.data(), buf.size()).code(), ENOSPC);

  std::vector<uint8_t> ones(8192, 1), back(8192);
  fault.add_rule({FaultInjectingEngine::Kind::kTornWrite, EIO, -1, 0, 1 << 20, 4096, 1, ""});
  EXPECT_EQ((*file)->WriteExact(100000, ones.data(), ones.size()).code(), EIO);
  ASSERT_TRUE((*file)->ReadExact(100000, back.data(), back.size()).ok());
  EXPECT_TRUE(std::all_of(back.begin(), back.begin() + 4096, [](uint8_t b) { return b == 1; }));
  EXPECT_FALSE(std::all_of(back.begin() + 4096, back.end(), [](uint8_t b) { return b == 1; }));
  EXPECT_EQ(fault.fired(), 4u);
}

TEST(FaultInjectingEngine, SkipLetsTheFirstMatchesThrough) {
  TempFile f(1 << 20);
  auto sync = make_sync_engine();
  FaultInjectingEngine fault(*sync);
  auto file = File::Open(f.path(), File::Mode::kReadWrite, &fault);
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> buf(4096, 7);
  FaultInjectingEngine::Rule r;
  r.kind = FaultInjectingEngine::Kind::kWriteError;
  r.times = 1;
  r.skip = 2;
  fault.add_rule(r);
  EXPECT_TRUE((*file)->ReadExact(0, buf.data(), buf.size()).ok()) << "reads do not count for a write rule";
  EXPECT_TRUE((*file)->WriteExact(0, buf.data(), buf.size()).ok());
  EXPECT_TRUE((*file)->WriteExact(4096, buf.data(), buf.size()).ok());
  EXPECT_EQ((*file)->WriteExact(8192, buf.data(), buf.size()).code(), EIO) << "the third write fails";
  EXPECT_TRUE((*file)->WriteExact(8192, buf.data(), buf.size()).ok()) << "and only that one";
  EXPECT_EQ(fault.fired(), 1u);
}

TEST(FaultInjectingEngine, ParsesRulesAndMatchesByPath) {
  auto rules = FaultInjectingEngine::ParseRules("read-error:victim:4096:10:ENOSPC:2;torn-write::0:1:EIO:-1:512");
  ASSERT_TRUE(rules.ok()) << rules.status().message();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[0].error, ENOSPC);
  EXPECT_EQ((*rules)[0].times, 2);
  EXPECT_EQ((*rules)[1].keep, 512u);
  EXPECT_FALSE(FaultInjectingEngine::ParseRules("explode:x:0:1").ok());
  auto skip = FaultInjectingEngine::ParseRules("write-error:x:0:1:EIO:1::7");
  ASSERT_TRUE(skip.ok()) << skip.status().message();
  EXPECT_EQ((*skip)[0].skip, 7u);
  EXPECT_EQ((*skip)[0].keep, 0u);
  EXPECT_FALSE(FaultInjectingEngine::ParseRules("read-error:x:zero:1").ok());

  TempFile f(65536);
  auto sync = make_sync_engine();
  FaultInjectingEngine fault(*sync);
  auto r = FaultInjectingEngine::ParseRules("read-error:no-such-name:0:65536");
  fault.add_rule((*r)[0]);
  auto file = File::Open(f.path(), File::Mode::kReadOnly, &fault);
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> buf(100);
  EXPECT_TRUE((*file)->ReadExact(0, buf.data(), buf.size()).ok()) << "path does not match";
  fault.add_rule((*FaultInjectingEngine::ParseRules("read-error:vdkit-io-test:0:65536"))[0]);
  EXPECT_EQ((*file)->ReadExact(0, buf.data(), buf.size()).code(), EIO);
}

TEST(RawDevice, ReadsExtentsAndRefusesOutOfRange) {
  TempFile f(1 << 20);
  auto dev = open_image(f.path());
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_EQ((*dev)->info().format, "raw");
  EXPECT_EQ((*dev)->size(), 1u << 20);
  std::vector<uint8_t> buf(100);
  ASSERT_TRUE((*dev)->read(999, buf).ok());
  EXPECT_EQ(0, memcmp(buf.data(), f.data().data() + 999, 100));
  EXPECT_EQ((*dev)->read((1 << 20) - 50, buf).code(), EINVAL);
  std::vector<Extent> ex;
  ASSERT_TRUE((*dev)->extents(0, 1 << 20, ex).ok());
  ASSERT_FALSE(ex.empty());
  EXPECT_EQ(ex.front().offset, 0u);
  EXPECT_EQ(ex.back().offset + ex.back().length, 1u << 20);
  EXPECT_EQ((*dev)->write(0, buf).code(), EROFS) << "sources open read-only";
}

TEST(ResolveReference, RefusesProtocolsJsonAbsoluteAndEscapes) {
  OpenContext ctx;
  ctx.top_dir = "/srv/images";
  EXPECT_EQ(resolve_reference(ctx, "/srv/images", "json:{\"file\":{}}", "backing file").status().code(), EPERM);
  EXPECT_EQ(resolve_reference(ctx, "/srv/images", "nbd://host/x", "backing file").status().code(), EPERM);
  EXPECT_EQ(resolve_reference(ctx, "/srv/images", "http:x", "extent file").status().code(), EPERM);
  auto abs = resolve_reference(ctx, "/srv/images", "/etc/passwd", "extent file");
  ASSERT_FALSE(abs.ok());
  EXPECT_NE(abs.status().message().find("--allow-external-paths"), std::string::npos);
  EXPECT_FALSE(resolve_reference(ctx, "/srv/images", "../other/x.img", "backing file").ok());
  auto ok = resolve_reference(ctx, "/srv/images/sub", "base.qcow2", "backing file");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "/srv/images/sub/base.qcow2");
  ctx.options.allow_external_paths = true;
  EXPECT_TRUE(resolve_reference(ctx, "/srv/images", "/etc/passwd", "extent file").ok());
  EXPECT_FALSE(resolve_reference(ctx, "/srv/images", "json:{}", "extent file").ok()) << "json: always refused";
}

// Batches left in flight (more writes than ring entries, odd sizes), retired a
// few at a time, land in the file in full.
TEST(IoQueue, BatchesLeftInFlightLandInTheFile) {
  TempFile f(4 << 20);
  for (auto& eng : engines()) {
    auto file = File::Open(f.path(), File::Mode::kReadWrite, eng.get());
    ASSERT_TRUE(file.ok());
    auto q = eng->make_queue();
    std::vector<uint8_t> want = f.data();
    std::vector<std::vector<uint8_t>> bufs;
    bufs.reserve(30 * 90);
    for (int b = 0; b < 30; ++b) {
      std::vector<IoRequest> reqs;
      for (int i = 0; i < 90; ++i) {
        uint64_t off = (static_cast<uint64_t>(b) * 90 + i) * 1543;
        bufs.emplace_back(700 + i, static_cast<uint8_t>(b * 7 + i + 1));
        reqs.push_back(IoRequest{(*file)->fd(), bufs.back().data(), bufs.back().size(), off, true, 0});
        std::memcpy(want.data() + off, bufs.back().data(), bufs.back().size());
      }
      q->start(reqs);
      Status st = q->wait(3);
      ASSERT_TRUE(st.ok()) << eng->name() << ": " << st.message();
      EXPECT_LE(q->batches(), 3u);
    }
    q->start({});  // nothing to write: done at once
    ASSERT_TRUE(q->wait(0).ok());
    EXPECT_EQ(q->batches(), 0u);
    std::vector<uint8_t> got(want.size());
    ASSERT_TRUE((*file)->ReadExact(0, got.data(), got.size()).ok());
    EXPECT_TRUE(got == want) << eng->name();
  }
}

// A batch's error comes back from the wait() that retires it, and from no other.
TEST(IoQueue, ErrorBelongsToTheWaitThatRetiresItsBatch) {
  TempFile f(1 << 20);
  int ro = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  int rw = ::open(f.path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  ASSERT_GE(rw, 0);
  for (auto& eng : engines()) {
    auto q = eng->make_queue();
    std::vector<uint8_t> buf(4096, 0x42);
    IoRequest good{rw, buf.data(), buf.size(), 0, true, 0};
    IoRequest bad{ro, buf.data(), buf.size(), 8192, true, 0};
    q->start(std::span<const IoRequest>(&good, 1));
    q->start(std::span<const IoRequest>(&bad, 1));
    q->start(std::span<const IoRequest>(&good, 1));
    EXPECT_TRUE(q->wait(2).ok()) << eng->name();
    Status st = q->wait(1);
    EXPECT_EQ(st.code(), EBADF) << eng->name() << ": " << st.message();
    EXPECT_NE(st.message().find("at offset 8192"), std::string::npos) << st.message();
    EXPECT_TRUE(q->wait(0).ok()) << eng->name();
  }
  ::close(ro);
  ::close(rw);
}

}  // namespace
}  // namespace vdkit
