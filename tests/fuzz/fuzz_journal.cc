// Fuzzes the jbd2 journal parser (guestfs/ext2/journal_format): the input is a journal, block 0 its superblock.
// Blocks past the input read as zeros, so a few kilobytes stand for a journal of any s_maxlen. Corrupt tags,
// revoke tables, sequence wraps and checksum failures must end in a refusal or a plan that stays inside the log and
// the file system, never a crash, a read out of bounds or a hang.
#include <ext2fs/ext2fs.h>

#include <cstring>

#include "guestfs/ext2/journal_format.h"

namespace {
constexpr uint64_t kFsBlocks = 1u << 20;  // the file system the tags may name
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vdkit::ext2;
  if (size < kJbd2SuperblockBytes) return 0;
  // The block size the superblock claims, if it is one ext4 uses; the file system is made to agree.
  uint32_t bs = uint32_t(data[12]) << 24 | uint32_t(data[13]) << 16 | uint32_t(data[14]) << 8 | data[15];
  if (bs != 1024 && bs != 2048 && bs != 4096) bs = 1024;
  std::vector<uint8_t> block0(bs, 0);
  std::memcpy(block0.data(), data, std::min<size_t>(bs, size));
  // A mutated checksummed superblock would stop at its checksum: the harness signs it again (unless the input's
  // first byte past the superblock says not to), so the fields behind it are fuzzed too.
  const bool csum = (block0[0x2b] & 0x18) != 0;
  if (csum && (size <= kJbd2SuperblockBytes || data[kJbd2SuperblockBytes] != 0xff)) {
    std::memset(block0.data() + 0xfc, 0, 4);
    uint32_t c = ext2fs_crc32c_le(~0u, block0.data(), kJbd2SuperblockBytes);
    block0[0xfc] = c >> 24, block0[0xfd] = c >> 16, block0[0xfe] = c >> 8, block0[0xff] = c & 0xff;
  }
  auto sb = parse_journal_superblock(block0, kMaxJournalBlocks, bs);
  if (!sb.ok()) return 0;
  uint64_t reads = 0;
  LogBlockReader read = [&](uint32_t log_block, std::span<uint8_t> out) -> vdkit::Status {
    if (log_block >= sb->max_len || out.size() != bs) __builtin_trap();  // the walker must stay inside the log
    if (++reads > 4ull * sb->max_len + 16) __builtin_trap();             // three passes, each at most one lap
    std::memset(out.data(), 0, out.size());
    const uint64_t off = uint64_t(log_block) * bs;
    if (off < size) std::memcpy(out.data(), data + off, std::min<uint64_t>(bs, size - off));
    return vdkit::Status::Ok();
  };
  auto plan = plan_journal_replay(*sb, kFsBlocks, read);
  if (!plan.ok()) return 0;
  for (const LogWrite& w : plan->writes)
    if (w.fs_block >= kFsBlocks || w.log_block >= sb->max_len || w.log_block < sb->first) __builtin_trap();
  return 0;
}
