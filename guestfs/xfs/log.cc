// XfsTree log state: whether the internal log ends with an unmount record (clean) or holds transactions a mount
// would replay (dirty). The log is only looked at, never replayed.
//
// Every 512-byte basic block of the log starts with the cycle number of the pass that wrote it (a record header
// holds it in h_cycle). The log is written in a circle, so the blocks read as cycle C up to the head and C-1 after
// it; the last record before the head is the last thing written. A clean unmount leaves a record with one
// operation flagged XLOG_UNMOUNT_TRANS there (the check xlog_find_tail makes).
#include "blockcore/base/bytes.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

namespace {

constexpr uint32_t kBasicBlock = 512;
constexpr uint32_t kLogVersion2 = 0x2;
constexpr uint32_t kHeaderCycleSize = 32768;
constexpr uint8_t kUnmountTrans = 0x20;
// Basic blocks searched back from the head for the last record header (a record is at most 256 KiB of data plus
// its headers).
constexpr uint64_t kMaxRecordBBs = 2048;

}  // namespace

Status XfsTree::check_log() {
  if (sb_.logstart == 0) {
    log_note_ = "the log is on an external device, so whether it is clean is not known";
    return Status::Ok();
  }
  VDKIT_ASSIGN_OR_RETURN(uint64_t log_off, fsb_to_offset(sb_.logstart, sb_.logblocks, "the internal log"));
  const uint64_t nbb = static_cast<uint64_t>(sb_.logblocks) * sb_.block_size / kBasicBlock;
  uint8_t bb[kBasicBlock];
  auto read_bb = [&](uint64_t i) {
    return read_at(log_off + (i % nbb) * kBasicBlock, bb, "log block " + std::to_string(i % nbb));
  };
  auto cycle_of = [&](uint64_t i) -> Result<uint32_t> {
    VDKIT_RETURN_IF_ERROR(read_bb(i));
    return load_be32(bb) == kLogHeaderMagic ? load_be32(bb + 4) : load_be32(bb);
  };
  VDKIT_ASSIGN_OR_RETURN(uint32_t first, cycle_of(0));
  if (first == 0) return Status::Ok();  // a zeroed log (xfs_repair -L, mkfs): nothing to replay
  VDKIT_ASSIGN_OR_RETURN(uint32_t last, cycle_of(nbb - 1));
  // The head: the first block of the older cycle, or the end when the whole log has the same cycle.
  uint64_t head = nbb;
  if (last != first) {
    uint64_t lo = 0, hi = nbb - 1;  // cycle(lo) == first, cycle(hi) == last
    while (hi - lo > 1) {
      uint64_t mid = lo + (hi - lo) / 2;
      VDKIT_ASSIGN_OR_RETURN(uint32_t c, cycle_of(mid));
      (c == first ? lo : hi) = mid;
    }
    head = hi;
  }
  // The last record header before the head.
  for (uint64_t back = 1; back <= std::min(kMaxRecordBBs, nbb); ++back) {
    const uint64_t i = (head + nbb - back) % nbb;
    VDKIT_RETURN_IF_ERROR(read_bb(i));
    if (load_be32(bb) != kLogHeaderMagic) continue;
    const uint32_t version = load_be32(bb + 8), num_logops = load_be32(bb + 40), h_size = load_be32(bb + 320);
    uint64_t hblks = 1;
    if ((version & kLogVersion2) && h_size > kHeaderCycleSize) hblks = (h_size + kHeaderCycleSize - 1) / kHeaderCycleSize;
    bool clean = false;
    if (num_logops == 1 && hblks < nbb) {
      VDKIT_RETURN_IF_ERROR(read_bb(i + hblks));
      clean = (bb[9] & kUnmountTrans) != 0;  // oh_flags of the one operation
    }
    // Logged extended-attribute intents are a log-incompatible feature only while the log holds them.
    log_dirty_ = !clean || sb_.log_incompat != 0;
    return Status::Ok();
  }
  log_dirty_ = true;
  log_note_ = "no log record header found before the log head; treating the log as dirty";
  return Status::Ok();
}

}  // namespace vdkit::guestfs::xfs
