// XfsTree fork mapping: extent lists in the inode and bmbt btrees (root in the inode, long-form blocks below), with
// every extent checked against the file system and every tree against cycles, level and count limits.
#include <algorithm>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

namespace {

std::string fork_name(const Inode& in, bool attr) {
  return std::string(attr ? "attribute" : "data") + " fork of inode " + std::to_string(in.ino);
}

}  // namespace

Status XfsTree::walk_bmbt(const Inode& in, bool attr, uint64_t fsb, int level, std::unordered_set<uint64_t>& visited,
                          ExtentList& out) {
  const std::string what = "bmbt block " + block_name(fsb) + " of the " + fork_name(in, attr);
  if (!visited.insert(fsb).second)
    return Status::Corrupt(describe() + ": " + what + " is reached twice (a cycle in the btree)");
  VDKIT_ASSIGN_OR_RETURN(uint64_t off, fsb_to_offset(fsb, 1, what));
  std::vector<uint8_t> b(sb_.block_size);
  VDKIT_RETURN_IF_ERROR(read_at(off, b, what));
  const uint8_t* p = b.data();
  size_t hdr = kLongBtreeHeaderV4;
  if (sb_.crc()) {
    if (load_be32(p) != kBmap3Magic) return Status::Corrupt(describe() + ": " + what + ": bad magic (not BMA3)");
    VDKIT_RETURN_IF_ERROR(check_v5_block(b, kLongBtreeCrcOffset, 24, off / 512, 40, 56, in.ino, 8, what));
    hdr = kLongBtreeHeaderV5;
  } else if (load_be32(p) != kBmapMagic) {
    return Status::Corrupt(describe() + ": " + what + ": bad magic (not BMAP)");
  }
  if (load_be16(p + 4) != level)
    return Status::Corrupt(describe() + ": " + what + ": level " + std::to_string(load_be16(p + 4)) + ", expected " +
                           std::to_string(level));
  const size_t numrecs = load_be16(p + 6);
  if (level == 0) {
    if (numrecs == 0 || numrecs > (b.size() - hdr) / 16)
      return Status::Corrupt(describe() + ": " + what + ": " + std::to_string(numrecs) + " records");
    if (out.size() + numrecs > kMaxForkExtents)
      return Status::Corrupt(describe() + ": the " + fork_name(in, attr) + " has more than " +
                             std::to_string(kMaxForkExtents) + " extents");
    for (size_t i = 0; i < numrecs; ++i) out.push_back(decode_extent(p + hdr + i * 16));
    return Status::Ok();
  }
  const size_t maxrecs = (b.size() - hdr) / 16;
  if (numrecs == 0 || numrecs > maxrecs)
    return Status::Corrupt(describe() + ": " + what + ": " + std::to_string(numrecs) + " pointers");
  for (size_t i = 0; i < numrecs; ++i)
    VDKIT_RETURN_IF_ERROR(walk_bmbt(in, attr, load_be64(p + hdr + maxrecs * 8 + i * 8), level - 1, visited, out));
  return Status::Ok();
}

Result<std::shared_ptr<const ExtentList>> XfsTree::fork_extents(const Inode& in, bool attr) {
  if (!attr) {
    std::lock_guard lock(mu_);
    auto it = extent_cache_.find(in.ino);
    if (it != extent_cache_.end()) return it->second;
  }
  const ForkFormat format = attr ? in.aformat : in.format;
  const std::span<const uint8_t> fork = attr ? in.attr_fork() : in.data_fork();
  const uint64_t count = attr ? in.anextents : in.nextents;
  const std::string name = fork_name(in, attr);
  auto list = std::make_shared<ExtentList>();
  if (format == ForkFormat::kExtents) {
    if (count > fork.size() / 16)
      return Status::Corrupt(describe() + ": the " + name + " claims " + std::to_string(count) + " extents");
    for (uint64_t i = 0; i < count; ++i) list->push_back(decode_extent(fork.data() + i * 16));
  } else if (format == ForkFormat::kBtree) {
    // The root (xfs_bmdr_block): level, numrecs, then as many keys and pointers as the fork has room for.
    if (fork.size() < 4 + 16) return Status::Corrupt(describe() + ": the " + name + " is too small for a btree root");
    const int level = load_be16(fork.data());
    const size_t numrecs = load_be16(fork.data() + 2);
    const size_t maxrecs = (fork.size() - 4) / 16;
    if (level < 1 || level >= kMaxBtreeLevels)
      return Status::Corrupt(describe() + ": the " + name + " has a btree of " + std::to_string(level) + " levels");
    if (numrecs == 0 || numrecs > maxrecs)
      return Status::Corrupt(describe() + ": the " + name + "'s btree root has " + std::to_string(numrecs) +
                             " pointers (room for " + std::to_string(maxrecs) + ")");
    std::unordered_set<uint64_t> visited;
    for (size_t i = 0; i < numrecs; ++i)
      VDKIT_RETURN_IF_ERROR(
          walk_bmbt(in, attr, load_be64(fork.data() + 4 + maxrecs * 8 + i * 8), level - 1, visited, *list));
    if (list->size() != count)
      return Status::Corrupt(describe() + ": the " + name + " says " + std::to_string(count) +
                             " extents, its btree holds " + std::to_string(list->size()));
  } else if (format != ForkFormat::kLocal && format != ForkFormat::kDev) {
    return Status::Corrupt(describe() + ": the " + name + " has format " + std::to_string(static_cast<int>(format)));
  }
  // In file order, not overlapping, each inside the file system and the file-offset space.
  uint64_t next = 0;
  for (const Extent& e : *list) {
    if (e.blockcount == 0 || e.startoff < next || e.startoff + e.blockcount > (1ull << 54))
      return Status::Corrupt(describe() + ": the " + name + " has an extent at file block " +
                             std::to_string(e.startoff) + " out of order or overlapping");
    VDKIT_RETURN_IF_ERROR(fsb_to_offset(e.startblock, e.blockcount,
                                        "extent at file block " + std::to_string(e.startoff) + " of the " + name)
                              .status());
    next = e.startoff + e.blockcount;
  }
  std::shared_ptr<const ExtentList> result = std::move(list);
  if (!attr) {
    std::lock_guard lock(mu_);
    if (extent_cache_.size() >= kExtentCacheInodes) extent_cache_.clear();
    extent_cache_[in.ino] = result;
  }
  return result;
}

Result<std::vector<uint8_t>> XfsTree::read_mapped(const ExtentList& extents, uint64_t fileblock, uint32_t length,
                                                  const std::string& what) {
  std::vector<uint8_t> out(length);
  const uint64_t bs = sb_.block_size;
  uint64_t done = 0;
  while (done < length) {
    const uint64_t fb = fileblock + done / bs;
    auto it = std::upper_bound(extents.begin(), extents.end(), fb,
                               [](uint64_t v, const Extent& e) { return v < e.startoff; });
    if (it == extents.begin() || fb >= std::prev(it)->startoff + std::prev(it)->blockcount)
      return Status::Corrupt(describe() + ": " + what + ": file block " + std::to_string(fb) + " is not mapped");
    const Extent& e = *std::prev(it);
    if (e.unwritten)
      return Status::Corrupt(describe() + ": " + what + ": file block " + std::to_string(fb) + " is unwritten");
    const uint64_t in_ext = fb - e.startoff;
    const uint64_t n = std::min<uint64_t>((e.blockcount - in_ext) * bs, length - done);
    VDKIT_ASSIGN_OR_RETURN(uint64_t off, fsb_to_offset(e.startblock + in_ext, div_round_up(n, bs), what));
    VDKIT_RETURN_IF_ERROR(read_at(off, std::span<uint8_t>(out.data() + done, n), what));
    done += n;
  }
  return out;
}

}  // namespace vdkit::guestfs::xfs
