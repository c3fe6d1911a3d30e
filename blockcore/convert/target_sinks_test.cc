// Tests of the in-place sinks and resume records against an in-memory target holding old bytes.
#include "blockcore/convert/target_sinks.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "blockcore/convert/raw_writer.h"
#include "blockcore/convert/resume_record.h"
#include "blockcore/sources/image.h"
#include "blockcore/testing/memory_device.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

constexpr uint64_t MiB = 1 << 20;
constexpr uint8_t kOld = 0xee;

// A target full of old bytes that records how each range was zeroed; write number fail_at fails.
class MemoryTarget final : public OutputTarget {
 public:
  explicit MemoryTarget(uint64_t size) : bytes(size, kOld) {}
  const std::string& name() const override { return name_; }
  uint64_t size() const override { return bytes.size(); }
  Status write(std::span<const IoRequest> reqs) override {
    for (const IoRequest& r : reqs) {
      if (writes++ == fail_at) return Status::IoError("injected write failure");
      std::memcpy(bytes.data() + r.offset, r.buf, r.len);
    }
    return Status::Ok();
  }
  Status zero(uint64_t offset, uint64_t length) override {
    zeroed += length;
    std::memset(bytes.data() + offset, 0, length);
    return Status::Ok();
  }
  Status flush() override {
    ++flushes;
    return Status::Ok();
  }
  std::vector<uint8_t> bytes;
  uint64_t writes = 0, fail_at = UINT64_MAX, zeroed = 0, flushes = 0;

 private:
  std::string name_ = "memory target";
};

// 24 MiB: data in the first chunk, a hole, data across a chunk boundary, zeros inside data, a zero extent.
std::unique_ptr<MemoryDevice> make_source() {
  std::vector<uint8_t> b(24 * MiB, 0);
  for (uint64_t i = 0; i < 3 * MiB; ++i) b[i] = static_cast<uint8_t>(i * 7 + 1);
  for (uint64_t i = 7 * MiB; i < 13 * MiB; ++i) b[i] = static_cast<uint8_t>(i % 251 + 1);
  std::memset(b.data() + 9 * MiB, 0, 64 << 10);  // zeros inside data
  for (uint64_t i = 20 * MiB; i < 24 * MiB; ++i) b[i] = static_cast<uint8_t>(i % 13 + 2);
  auto d = std::make_unique<MemoryDevice>(std::move(b), false);
  d->set_extents({{0, 3 * MiB, ExtentType::kData},
                  {3 * MiB, 4 * MiB, ExtentType::kHole},
                  {7 * MiB, 6 * MiB, ExtentType::kData},
                  {13 * MiB, 7 * MiB, ExtentType::kZero},
                  {20 * MiB, 4 * MiB, ExtentType::kData}});
  return d;
}

ConvertOptions raw_options() {
  ConvertOptions o;
  o.threads = 2;
  return o;
}

TEST(TargetSinks, RawZeroesEveryRangeWithoutDataAndKeepsBytesPastTheSource) {
  auto src = make_source();
  MemoryTarget t(32 * MiB);
  ConvertOptions o = raw_options();
  auto sink = make_in_place_sink(t, o, {});
  ASSERT_TRUE(sink.ok()) << sink.status().message();
  auto st = convert(*src, **sink, o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_TRUE(std::equal(src->bytes().begin(), src->bytes().end(), t.bytes.begin()));
  for (uint64_t i = 24 * MiB; i < 32 * MiB; ++i) ASSERT_EQ(t.bytes[i], kOld) << i;
  EXPECT_GE(t.zeroed, 11 * MiB);  // the hole and the zero extent as zero ranges, not writes
  EXPECT_GE(t.flushes, 1u);
}

TEST(TargetSinks, TargetIsZeroSkipsZeroRanges) {
  auto src = make_source();
  MemoryTarget t(24 * MiB);
  std::fill(t.bytes.begin(), t.bytes.end(), 0);
  ConvertOptions o = raw_options();
  o.target_is_zero = true;
  auto sink = make_in_place_sink(t, o, {});
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE(convert(*src, **sink, o).ok());
  EXPECT_EQ(t.zeroed, 0u);
  EXPECT_EQ(t.bytes, src->bytes());
}

// A run that fails part way, flushed where it stopped, then resumed from that point, gives the same bytes.
TEST(TargetSinks, ResumeAfterAFailureGivesTheSameBytes) {
  for (TargetFormat f : {TargetFormat::kRaw, TargetFormat::kQcow2}) {
    auto src = make_source();
    MemoryTarget t(32 * MiB);
    ConvertOptions o = raw_options();
    o.format = f;
    t.fail_at = f == TargetFormat::kRaw ? 2 : 3;
    uint64_t flushed = 0;
    InPlaceOptions place;
    place.checkpoint_seconds = 0;  // after every chunk
    place.on_flushed = [&](uint64_t at) {
      flushed = at;
      return Status::Ok();
    };
    auto sink = make_in_place_sink(t, o, place);
    ASSERT_TRUE(sink.ok());
    ASSERT_FALSE(convert(*src, **sink, o).ok());
    auto reached = (*sink)->flush_reached();
    ASSERT_TRUE(reached.ok());
    EXPECT_GE(*reached, flushed);
    ASSERT_EQ(*reached % kConvertChunk, 0u);
    ASSERT_GT(*reached, 0u);
    ASSERT_LT(*reached, 24 * MiB);
    std::vector<uint8_t> whole;
    {
      MemoryTarget ref(32 * MiB);
      auto s2 = make_in_place_sink(ref, o, {});
      ASSERT_TRUE(convert(*src, **s2, o).ok());
      whole = ref.bytes;
    }
    t.fail_at = UINT64_MAX;
    place.start = *reached;
    o.start_offset = *reached;
    auto resumed = make_in_place_sink(t, o, place);
    ASSERT_TRUE(resumed.ok());
    auto st = convert(*src, **resumed, o);
    ASSERT_TRUE(st.ok()) << st.status().message();
    EXPECT_EQ(t.bytes, whole) << (f == TargetFormat::kRaw ? "raw" : "qcow2");
  }
}

TEST(TargetSinks, Qcow2InPlaceOpensAsTheSourceAndRefusesATooSmallTarget) {
  auto src = make_source();
  MemoryTarget t(16 * MiB);
  ConvertOptions o = raw_options();
  o.format = TargetFormat::kQcow2;
  auto sink = make_in_place_sink(t, o, {});
  ASSERT_TRUE(sink.ok());
  auto st = convert(*src, **sink, o);
  ASSERT_TRUE(st.ok()) << st.status().message();
  std::string p = test::temp_path("vdkit-target-sinks-test", "q");
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  auto img = open_image(p);
  ::unlink(p.c_str());
  ASSERT_TRUE(img.ok()) << img.status().message();
  std::vector<uint8_t> back(24 * MiB);
  ASSERT_TRUE((*img)->read(0, back).ok());
  EXPECT_EQ(back, src->bytes());

  MemoryTarget small(4 * MiB);
  auto s2 = make_in_place_sink(small, o, {});
  ASSERT_TRUE(s2.ok());
  auto r = convert(*src, **s2, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ENOSPC);
  EXPECT_NE(r.status().message().find("past the end"), std::string::npos) << r.status().message();
  EXPECT_EQ(small.writes + small.zeroed, 0u);
}

// Runs of used units; short gaps with data after them inside the chunk are merged, a trailing gap never is.
TEST(TargetSinks, UsedRunsMergeShortGapsOnly) {
  ConvertChunk c;
  c.used = {1, 1, 0, 1, 0, 0, 0, 1, 0, 0};
  auto runs = [&](uint64_t gap) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    EXPECT_TRUE(for_each_used_run(c, 4096, gap, [&](uint64_t a, uint64_t b) {
                  out.emplace_back(a, b);
                  return Status::Ok();
                }).ok());
    return out;
  };
  using R = std::vector<std::pair<uint64_t, uint64_t>>;
  EXPECT_EQ(runs(0), (R{{0, 2}, {3, 4}, {7, 8}}));
  EXPECT_EQ(runs(8192), (R{{0, 4}, {7, 8}}));
  EXPECT_EQ(runs(3 * 4096 + 1), (R{{0, 8}}));
  auto st = for_each_used_run(c, 4096, 0, [](uint64_t, uint64_t) { return Status::IoError("stop"); });
  EXPECT_EQ(st.message(), "stop");
}

TEST(ResumeRecord, RoundTripsAndRefusesDamage) {
  std::string p = test::temp_path("vdkit-resume-test", "rec");
  ResumeRecord r;
  r.source = "a.vmdk";
  r.target = "/dev/loop9";
  r.target_format = "raw";
  r.source_size = 64 * MiB;
  r.target_size = 80 * MiB;
  r.header_bytes = MiB;
  r.header_crc32 = "01234567";
  r.flushed = 8 * MiB;
  r.last_chunk_offset = 4 * MiB;
  r.last_chunk_bytes = 4 * MiB;
  r.last_chunk_crc32 = "89abcdef";
  ASSERT_TRUE(write_resume_record(p, r).ok());
  auto back = read_resume_record(p);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->flushed, r.flushed);
  EXPECT_EQ(back->last_chunk_crc32, r.last_chunk_crc32);
  EXPECT_EQ(back->target, r.target);
  r.flushed = 100 * MiB;  // past the source
  ASSERT_TRUE(write_resume_record(p, r).ok());
  EXPECT_FALSE(read_resume_record(p).ok());
  std::ofstream(p) << "{\"vdkit-resume\": 1, \"source\": 3}";
  auto bad = read_resume_record(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'source'"), std::string::npos) << bad.status().message();
  std::ofstream(p) << "not json";
  EXPECT_FALSE(read_resume_record(p).ok());
  ::unlink(p.c_str());

  std::string a = default_resume_record_path("/s", "/dev/sda");
  std::string b = default_resume_record_path("/s", "nbd+unix:///?socket=/run/x.sock");
  EXPECT_EQ(a.rfind("/s/resume/_dev_sda-", 0), 0u) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(b.find('/', std::string("/s/resume/").size()), std::string::npos) << b;
}

TEST(ResumeRecord, DeviceCrcSeesAChangedByte) {
  auto src = make_source();
  auto a = device_crc32(*src, 0, MiB);
  src->bytes()[100] ^= 1;
  auto b = device_crc32(*src, 0, MiB);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->size(), 8u);
}

}  // namespace
}  // namespace vdkit
