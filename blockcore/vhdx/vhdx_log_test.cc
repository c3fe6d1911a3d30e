// The VHDX log scan and replay on logs written here from the specification's layout: which sequence is active,
// where a damaged or out-of-order entry ends it, wrap-around, and the bytes a replay writes.
#include "blockcore/vhdx/vhdx_log.h"

#include <gtest/gtest.h>

#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/crc32c.h"
#include "blockcore/testing/memory_device.h"

namespace vdkit::vhdx {
namespace {

constexpr uint64_t kSector = 4096;
constexpr uint64_t kFileSize = 8ull << 20;
constexpr uint64_t kLogOffset = 1ull << 20;
const uint8_t kGuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

struct Desc {
  bool zero = false;
  uint64_t offset = 0;
  uint64_t length = kSector;  // zero descriptors only
  uint8_t fill = 0;           // data descriptors: the sector's bytes are fill + i % 13
};

std::vector<uint8_t> sector_bytes(uint8_t fill) {
  std::vector<uint8_t> s(kSector);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(fill + i % 13);
  return s;
}

struct EntryFields {
  uint64_t sequence = 1;
  uint32_t tail = 0;
  uint64_t flushed = kFileSize;
  uint64_t last = kFileSize;
  const uint8_t* guid = kGuid;
};

// One log entry: header and descriptor sectors, then one data sector per data descriptor, sealed with CRC-32C.
std::vector<uint8_t> make_entry(const EntryFields& f, const std::vector<Desc>& descs) {
  const uint64_t desc_sectors = (64 + 32 * descs.size() + kSector - 1) / kSector;
  uint64_t data = 0;
  for (const Desc& d : descs) data += !d.zero;
  std::vector<uint8_t> e((desc_sectors + data) * kSector);
  std::memcpy(e.data(), "loge", 4);
  store_le32(&e[8], static_cast<uint32_t>(e.size()));
  store_le32(&e[12], f.tail);
  store_le64(&e[16], f.sequence);
  store_le32(&e[24], static_cast<uint32_t>(descs.size()));
  std::memcpy(&e[32], f.guid, 16);
  store_le64(&e[48], f.flushed);
  store_le64(&e[56], f.last);
  uint64_t k = 0;
  for (size_t i = 0; i < descs.size(); ++i) {
    uint8_t* p = &e[64 + 32 * i];
    const Desc& d = descs[i];
    store_le64(p + 16, d.offset);
    store_le64(p + 24, f.sequence);
    if (d.zero) {
      std::memcpy(p, "zero", 4);
      store_le64(p + 8, d.length);
      continue;
    }
    std::vector<uint8_t> s = sector_bytes(d.fill);
    std::memcpy(p, "desc", 4);
    std::memcpy(p + 4, &s[4092], 4);
    std::memcpy(p + 8, &s[0], 8);
    uint8_t* ds = &e[(desc_sectors + k++) * kSector];
    std::memcpy(ds, "data", 4);
    store_le32(ds + 4, static_cast<uint32_t>(f.sequence >> 32));
    std::memcpy(ds + 8, &s[8], 4084);
    store_le32(ds + 4092, static_cast<uint32_t>(f.sequence));
  }
  store_le32(&e[4], crc32c(e.data(), e.size()));
  return e;
}

// Puts an entry into the log at a sector, wrapping past the end as the circular log does.
void put(std::vector<uint8_t>& log, uint64_t sector, const std::vector<uint8_t>& entry) {
  const uint64_t n = log.size() / kSector;
  for (uint64_t i = 0; i < entry.size() / kSector; ++i)
    std::memcpy(&log[((sector + i) % n) * kSector], &entry[i * kSector], kSector);
}

Result<LogPlan> plan(const std::vector<uint8_t>& log, uint64_t file_size = kFileSize) {
  return plan_log_replay(log, kGuid, file_size, kLogOffset, "test.vhdx");
}

std::vector<uint64_t> sequences(const LogPlan& p) {
  std::vector<uint64_t> out;
  for (const auto& e : p.entries) out.push_back(e.sequence);
  return out;
}

TEST(VhdxLog, ReplaysDataAndZeroDescriptorsIntoTheLayer) {
  std::vector<uint8_t> log(1 << 20);
  put(log, 0, make_entry({}, {{false, 3 << 20, 0, 0x40}, {true, (3 << 20) + kSector, 2 * kSector, 0}}));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), std::vector<uint64_t>{1});
  EXPECT_EQ(p->data_sectors, 1u);
  EXPECT_EQ(p->zero_bytes, 2 * kSector);
  EXPECT_EQ(describe_log_replay(*p), "1 entry (sequence 1), 1 sectors written, 8192 bytes zeroed");

  MemoryDevice file(std::vector<uint8_t>(kFileSize, 0xee));
  ASSERT_TRUE(apply_log_replay(*p, file).ok());
  const uint8_t* b = file.bytes().data();
  EXPECT_EQ(std::memcmp(b + (3 << 20), sector_bytes(0x40).data(), kSector), 0);  // leading, middle, trailing joined
  for (uint64_t i = (3 << 20) + kSector; i < (3 << 20) + 3 * kSector; ++i) ASSERT_EQ(b[i], 0) << i;
  EXPECT_EQ(b[(3 << 20) + 3 * kSector], 0xee);
  EXPECT_EQ(b[(3 << 20) - 1], 0xee);
}

TEST(VhdxLog, ManyDescriptorsSpillIntoMoreDescriptorSectors) {
  std::vector<Desc> descs;
  for (int i = 0; i < 130; ++i) descs.push_back({false, (2ull << 20) + i * kSector, 0, static_cast<uint8_t>(i)});
  std::vector<uint8_t> log(1 << 20);
  put(log, 0, make_entry({}, descs));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->writes.size(), 130u);
  EXPECT_EQ(p->writes[129].data, sector_bytes(129));
  EXPECT_EQ(p->writes[129].file_offset, (2ull << 20) + 129 * kSector);
}

TEST(VhdxLog, TheSequenceWithTheHighestHeadWins) {
  std::vector<uint8_t> log(1 << 20);
  auto a = make_entry({5, 0}, {{false, 2 << 20, 0, 1}});
  auto b = make_entry({6, 0}, {{false, 2 << 20, 0, 2}});
  put(log, 0, a);
  put(log, a.size() / kSector, b);
  put(log, 100, make_entry({10, 100 * kSector}, {{false, 2 << 20, 0, 3}}));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), std::vector<uint64_t>{10});
  EXPECT_EQ(p->writes[0].data, sector_bytes(3));
}

TEST(VhdxLog, ReplayStartsAtTheHeadsTail) {
  std::vector<uint8_t> log(1 << 20);
  uint64_t at = 0;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    // Entry 3 says the entries before entry 2 were already applied: replay starts at entry 2.
    auto e = make_entry({seq, seq == 3 ? static_cast<uint32_t>(2 * kSector) : 0}, {{false, 2 << 20, 0, 9}});
    put(log, at, e);
    at += e.size() / kSector;
  }
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), (std::vector<uint64_t>{2, 3}));
}

TEST(VhdxLog, ABadChecksumEndsTheSequence) {
  std::vector<uint8_t> log(1 << 20);
  uint64_t at = 0;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto e = make_entry({seq, 0}, {{false, 2 << 20, 0, static_cast<uint8_t>(seq)}});
    if (seq == 3) e[e.size() - 100] ^= 1;  // a torn data sector
    put(log, at, e);
    at += e.size() / kSector;
  }
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(p->writes.back().data, sector_bytes(2));
}

TEST(VhdxLog, ASequenceGapEndsTheSequence) {
  std::vector<uint8_t> log(1 << 20);
  uint64_t at = 0;
  for (uint64_t seq : {1, 2, 4}) {
    auto e = make_entry({seq, 0}, {{false, 2 << 20, 0, 1}});
    put(log, at, e);
    at += e.size() / kSector;
  }
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), (std::vector<uint64_t>{1, 2}));
}

TEST(VhdxLog, ASequenceWrapsPastTheEndOfTheLog) {
  std::vector<uint8_t> log(64 * kSector);
  // Entry 7 takes sectors 62-63, entry 8 sectors 0-1 of the next lap (its data sector is sector 1).
  put(log, 62, make_entry({7, 62 * kSector}, {{false, 2 << 20, 0, 7}}));
  put(log, 0, make_entry({8, 62 * kSector}, {{false, (2 << 20) + kSector, 0, 8}}));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(sequences(*p), (std::vector<uint64_t>{7, 8}));
  // And an entry whose own sectors wrap.
  std::vector<uint8_t> log2(64 * kSector);
  put(log2, 63, make_entry({3, 63 * kSector}, {{false, 2 << 20, 0, 5}}));
  auto q = plan(log2);
  ASSERT_TRUE(q.ok()) << q.status().message();
  EXPECT_EQ(q->writes[0].data, sector_bytes(5));
}

// Nothing committed under the header's LogGuid: the plan is empty and names the first entry that failed.
void expect_nothing_to_replay(const std::vector<uint8_t>& log, const std::string& why) {
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->entries.empty());
  EXPECT_TRUE(p->writes.empty());
  EXPECT_NE(p->no_sequence_reason.find(why), std::string::npos) << p->no_sequence_reason;
}

TEST(VhdxLog, ALogWithNoUsableSequenceReplaysNothing) {
  expect_nothing_to_replay(std::vector<uint8_t>(1 << 20), "no entry");

  std::vector<uint8_t> log(1 << 20);
  put(log, 0, make_entry({1, 50 * kSector}, {{false, 2 << 20, 0, 1}}));  // its tail is not an entry
  expect_nothing_to_replay(log, "names a tail");

  const uint8_t other[16] = {9};
  EntryFields f;
  f.guid = other;
  put(log, 0, make_entry(f, {{false, 2 << 20, 0, 1}}));
  expect_nothing_to_replay(log, "stale entry");

  auto torn = make_entry({}, {{false, 2 << 20, 0, 1}});
  torn[kSector + 9] ^= 1;
  put(log, 0, torn);
  expect_nothing_to_replay(log, "CRC-32C");
}

TEST(VhdxLog, AnEntryWritingTheHeadersTheLogOrPastTheFileIsNotReplayed) {
  for (uint64_t off : {uint64_t{64} << 10, kLogOffset + kSector, kFileSize}) {
    std::vector<uint8_t> log(1 << 20);
    put(log, 0, make_entry({}, {{false, off, 0, 1}}));
    expect_nothing_to_replay(log, "descriptor 0");
  }
  // A zero descriptor whose length runs off the end of a 64-bit offset.
  std::vector<uint8_t> log(1 << 20);
  put(log, 0, make_entry({}, {{true, 2 << 20, ~uint64_t{0} - 4095, 0}}));
  expect_nothing_to_replay(log, "descriptor 0");
}

TEST(VhdxLog, TheFileMayGrowToLastFileOffsetButNotBeShorterThanFlushed) {
  std::vector<uint8_t> log(1 << 20);
  EntryFields grow;
  grow.last = kFileSize + (2 << 20);
  put(log, 0, make_entry(grow, {{false, kFileSize + kSector, 0, 1}}));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->view_size, kFileSize + (2 << 20));

  EntryFields truncated;
  truncated.flushed = kFileSize + (1 << 20);
  put(log, 0, make_entry(truncated, {{false, 2 << 20, 0, 1}}));
  p = plan(log);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("truncated"), std::string::npos) << p.status().message();
}

TEST(VhdxLog, AllowsNoDescriptorsAndRejectsAnUnalignedLog) {
  std::vector<uint8_t> log(1 << 20);
  put(log, 0, make_entry({}, {}));
  auto p = plan(log);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_TRUE(p->writes.empty());
  std::vector<uint8_t> odd(kSector + 1);
  EXPECT_FALSE(plan(odd).ok());
}

}  // namespace
}  // namespace vdkit::vhdx
