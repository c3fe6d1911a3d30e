// Tests of the stream sources fed through a pipe: streamOptimized VMDK markers (order, cuts, bad fields), raw.
#include "blockcore/sources/stream_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit {
namespace {

void le32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void le64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr uint64_t kGrain = 64 << 10;

// A streamOptimized VMDK: header (overhead 1 sector), then grain markers for `grains` (grain index -> fill byte
// pattern seed), then (if eos) a footer-less end-of-stream marker.
std::vector<uint8_t> make_stream(uint64_t capacity_bytes, const std::vector<uint64_t>& grains, bool eos,
                                 uint64_t gd_offset, std::vector<uint8_t>* disk = nullptr) {
  std::vector<uint8_t> s(512, 0);
  std::memcpy(s.data(), "KDMV", 4);
  le32(s, 4, 3);
  le32(s, 8, vmdk::kFlagValidNewlineTest | vmdk::kFlagCompressedGrains | vmdk::kFlagMarkers);
  le64(s, 12, capacity_bytes / 512);
  le64(s, 20, kGrain / 512);
  le32(s, 44, 512);
  le64(s, 56, gd_offset);
  le64(s, 64, 1);
  s[73] = '\n';
  s[74] = ' ';
  s[75] = '\r';
  s[76] = '\n';
  s[77] = 1;
  if (disk) disk->assign(capacity_bytes, 0);
  for (uint64_t g : grains) {
    std::vector<uint8_t> data(kGrain);
    std::mt19937 rng(static_cast<unsigned>(g));
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i % 7 == 0 ? rng() : g);
    if (disk) std::memcpy(disk->data() + g * kGrain, data.data(), kGrain);
    auto z = compress(Codec::kZlib, data, 2 * kGrain);
    EXPECT_FALSE(z.empty());
    size_t at = s.size();
    s.resize(at + 12 + z.size(), 0);
    le64(s, at, g * kGrain / 512);
    le32(s, at + 8, static_cast<uint32_t>(z.size()));
    std::memcpy(s.data() + at + 12, z.data(), z.size());
    s.resize((s.size() + 511) / 512 * 512, 0);
  }
  if (eos) s.resize(s.size() + 512, 0);
  return s;
}

// Feeds bytes through a pipe and drains the stream source, assembling the disk.
struct Drained {
  Status status;
  std::vector<uint8_t> disk;
  std::string kind;
};
Drained drain(const std::vector<uint8_t>& bytes, uint64_t window = 1 << 20) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fds[1], bytes.data() + off, bytes.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fds[1]);
  });
  Drained d;
  auto src = open_stream_source(fds[0], "standard input");
  if (!src.ok()) {
    d.status = src.status();
  } else {
    d.kind = (*src)->kind();
    for (;;) {
      StreamPiece p;
      auto more = (*src)->next(window, p);
      if (!more.ok()) {
        d.status = more.status();
        break;
      }
      if (!*more) break;
      std::vector<uint8_t> buf(window, 0);
      Status st = fill_from_piece(p, buf);
      if (!st.ok()) {
        d.status = st;
        break;
      }
      if (d.disk.size() < p.offset + p.length) d.disk.resize(p.offset + p.length, 0);
      std::memcpy(d.disk.data() + p.offset, buf.data(), p.length);
    }
    if (d.status.ok()) d.disk.resize((*src)->size(), 0);
  }
  // Unblock the writer if we stopped early.
  ::close(fds[0]);
  writer.join();
  return d;
}

TEST(StreamSource, StreamOptimizedInOrderWithEndMarker) {
  std::vector<uint8_t> want;
  auto s = make_stream(3 << 20, {0, 1, 5, 16, 17, 47}, true, vmdk::kGdAtEnd, &want);
  auto d = drain(s);
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.kind, "streamOptimized VMDK stream");
  EXPECT_EQ(d.disk, want);
}

TEST(StreamSource, QemuStyleStreamEndsAtEndOfFile) {
  std::vector<uint8_t> want;
  auto s = make_stream(2 << 20, {3, 4, 30}, false, 1, &want);
  auto d = drain(s);
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.disk, want);
}

TEST(StreamSource, MissingEndMarkerIsTruncationWhenTheHeaderPromisesAFooter) {
  auto s = make_stream(2 << 20, {3, 4}, false, vmdk::kGdAtEnd);
  auto d = drain(s);
  ASSERT_FALSE(d.status.ok());
  EXPECT_NE(d.status.message().find("truncated"), std::string::npos) << d.status.message();
}

TEST(StreamSource, CutInsideAGrainIsTruncation) {
  auto s = make_stream(2 << 20, {3, 4}, true, 1);
  s.resize(512 + 700);
  auto d = drain(s);
  ASSERT_FALSE(d.status.ok());
  EXPECT_NE(d.status.message().find("in the middle of a compressed grain"), std::string::npos) << d.status.message();
}

TEST(StreamSource, GrainsGoingBackwardsAcrossWindowsAreRefused) {
  // Grain 20 (window 1) then grain 2 (window 0): cannot be streamed in order.
  auto s = make_stream(2 << 20, {20, 2}, true, 1);
  auto d = drain(s);
  ASSERT_FALSE(d.status.ok());
  EXPECT_NE(d.status.message().find("goes backwards"), std::string::npos) << d.status.message();
  // Within one window any order is fine.
  std::vector<uint8_t> want;
  auto ok = make_stream(2 << 20, {5, 1, 3}, true, 1, &want);
  auto d2 = drain(ok);
  ASSERT_TRUE(d2.status.ok()) << d2.status.message();
  EXPECT_EQ(d2.disk, want);
}

TEST(StreamSource, OversizedAndMisplacedGrainMarkersNameTheField) {
  auto s = make_stream(2 << 20, {1}, true, 1);
  le32(s, 512 + 8, 10u << 20);  // compressed size far over 2 grains
  auto d = drain(s);
  ASSERT_FALSE(d.status.ok());
  EXPECT_NE(d.status.message().find("over the limit"), std::string::npos) << d.status.message();
  auto s2 = make_stream(2 << 20, {1}, true, 1);
  le64(s2, 512, 1ull << 40);  // LBA past the disk
  auto d2 = drain(s2);
  ASSERT_FALSE(d2.status.ok());
  EXPECT_NE(d2.status.message().find("LBA"), std::string::npos) << d2.status.message();
}

TEST(StreamSource, RawStreamIsReadAsItComes) {
  std::vector<uint8_t> raw((3 << 20) + 1234);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 31 + 7);
  auto d = drain(raw);
  ASSERT_TRUE(d.status.ok()) << d.status.message();
  EXPECT_EQ(d.kind, "raw stream");
  EXPECT_EQ(d.disk, raw);
}

TEST(StreamSource, Qcow2AndPlainSparseVmdkOnStdinAreRefused) {
  std::vector<uint8_t> q(4096, 0);
  std::memcpy(q.data(), "QFI\xfb", 4);
  auto d = drain(q);
  EXPECT_EQ(d.status.code(), ENOTSUP);
  auto s = make_stream(1 << 20, {}, true, 1);
  le32(s, 8, vmdk::kFlagValidNewlineTest);  // no markers: monolithicSparse
  auto d2 = drain(s);
  EXPECT_EQ(d2.status.code(), ENOTSUP);
  EXPECT_NE(d2.status.message().find("not streamOptimized"), std::string::npos) << d2.status.message();
}

}  // namespace
}  // namespace vdkit
