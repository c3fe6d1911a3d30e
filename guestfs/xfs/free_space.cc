// XfsTree::unused_ranges: the free extents of every allocation group, from the AGF's by-block-number free-space
// btree (bnobt), as byte ranges of the volume. The blocks on the AG free list (AGFL) are in use by the btrees' reserve
// and are not reported.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "blockcore/base/bytes.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

namespace {

struct AgWalk {
  uint32_t agno = 0;
  uint32_t length = 0;  // blocks in this AG (agf_length)
  std::unordered_set<uint32_t> visited;
  std::vector<std::pair<uint32_t, uint32_t>> records;  // agbno, blockcount
};

}  // namespace

Status XfsTree::unused_ranges(std::vector<std::pair<uint64_t, uint64_t>>& out) {
  out.clear();
  const uint64_t bs = sb_.block_size;
  uint64_t total_records = 0;
  for (uint32_t agno = 0; agno < sb_.agcount; ++agno) {
    const uint64_t ag_off = static_cast<uint64_t>(agno) * sb_.agblocks * bs;
    const std::string agf_name = "AGF of AG " + std::to_string(agno);
    std::vector<uint8_t> agf(sb_.sectsize);
    VDKIT_RETURN_IF_ERROR(read_at(ag_off + sb_.sectsize, agf, agf_name));
    auto bad = [&](const std::string& what, const std::string& why) {
      return Status::Corrupt(describe() + ": " + what + ": " + why);
    };
    if (load_be32(agf.data()) != kAgfMagic) return bad(agf_name, "bad magic");
    if (load_be32(agf.data() + 8) != agno) return bad(agf_name, "agf_seqno " + std::to_string(load_be32(agf.data() + 8)));
    if (sb_.crc()) {
      if (!crc_ok(agf, kAgfCrcOffset)) return bad(agf_name, "CRC mismatch");
      if (std::memcmp(agf.data() + 64, sb_.metadata_uuid(), 16) != 0) return bad(agf_name, "UUID does not match");
    }
    AgWalk w;
    w.agno = agno;
    w.length = load_be32(agf.data() + 12);
    const uint64_t expected = std::min<uint64_t>(sb_.agblocks, sb_.dblocks - static_cast<uint64_t>(agno) * sb_.agblocks);
    if (w.length != expected) return bad(agf_name, "agf_length " + std::to_string(w.length));
    const uint32_t root = load_be32(agf.data() + 16);
    const uint32_t levels = load_be32(agf.data() + 28);
    if (levels < 1 || levels >= static_cast<uint32_t>(kMaxBtreeLevels))
      return bad(agf_name, "bnobt of " + std::to_string(levels) + " levels");

    // Depth-first through the short-form btree blocks; pointers are AG block numbers.
    struct Pending {
      uint32_t agbno;
      int level;
    };
    std::vector<Pending> todo = {{root, static_cast<int>(levels) - 1}};
    const size_t hdr = sb_.crc() ? kShortBtreeHeaderV5 : kShortBtreeHeaderV4;
    std::vector<uint8_t> b(bs);
    while (!todo.empty()) {
      Pending cur = todo.back();
      todo.pop_back();
      const std::string what = "bnobt block " + std::to_string(cur.agbno) + " of AG " + std::to_string(agno);
      if (cur.agbno >= w.length) return bad(what, "lies outside the AG");
      if (!w.visited.insert(cur.agbno).second) return bad(what, "is reached twice (a cycle in the btree)");
      const uint64_t off = ag_off + cur.agbno * bs;
      VDKIT_RETURN_IF_ERROR(read_at(off, b, what));
      const uint8_t* p = b.data();
      if (sb_.crc()) {
        if (load_be32(p) != kAbtb3Magic) return bad(what, "bad magic (not AB3B)");
        VDKIT_RETURN_IF_ERROR(check_v5_block(b, kShortBtreeCrcOffset, 16, off / 512, 32, 48, agno, 4, what));
      } else if (load_be32(p) != kAbtbMagic) {
        return bad(what, "bad magic (not ABTB)");
      }
      if (load_be16(p + 4) != cur.level) return bad(what, "level " + std::to_string(load_be16(p + 4)));
      const size_t numrecs = load_be16(p + 6);
      if (cur.level == 0) {
        if (numrecs > (bs - hdr) / 8) return bad(what, std::to_string(numrecs) + " records");
        total_records += numrecs;
        if (total_records > kMaxFreeRecords) return bad(what, "more free extents than the limit");
        for (size_t i = 0; i < numrecs; ++i)
          w.records.emplace_back(load_be32(p + hdr + i * 8), load_be32(p + hdr + i * 8 + 4));
      } else {
        const size_t maxrecs = (bs - hdr) / 12;
        if (numrecs == 0 || numrecs > maxrecs) return bad(what, std::to_string(numrecs) + " pointers");
        // Pushed in reverse so the leaves come out in key order.
        for (size_t i = numrecs; i-- > 0;) todo.push_back({load_be32(p + hdr + maxrecs * 8 + i * 4), cur.level - 1});
      }
    }
    uint64_t next = 0;
    for (const auto& [agbno, count] : w.records) {
      if (count == 0 || agbno < next || static_cast<uint64_t>(agbno) + count > w.length)
        return bad("bnobt of AG " + std::to_string(agno),
                   "free extent " + std::to_string(agbno) + "+" + std::to_string(count) + " out of order or outside the AG");
      next = static_cast<uint64_t>(agbno) + count;
      const uint64_t start = ag_off + static_cast<uint64_t>(agbno) * bs, len = static_cast<uint64_t>(count) * bs;
      if (!out.empty() && out.back().first + out.back().second == start)
        out.back().second += len;
      else
        out.emplace_back(start, len);
    }
  }
  return Status::Ok();
}

}  // namespace vdkit::guestfs::xfs
