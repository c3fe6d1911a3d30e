// The unused space of a Btrfs device: what no chunk holds (past the first MiB Btrfs never allocates), and, when no
// log tree is waiting for replay, what the extent tree leaves free inside each block group. The superblock copies
// are never reported.
#include <algorithm>

#include "guestfs/btrfs/btrfs_tree.h"

namespace vdkit::guestfs::btrfs {

namespace {

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;  // {start, end}

// `all` minus `used` (both lists of {start, end}; used need not be sorted).
Ranges subtract(uint64_t start, uint64_t end, Ranges used) {
  std::sort(used.begin(), used.end());
  Ranges out;
  uint64_t pos = start;
  for (auto [s, e] : used) {
    if (e <= pos) continue;
    if (s >= end) break;
    if (s > pos) out.push_back({pos, s});
    pos = std::max(pos, e);
  }
  if (pos < end) out.push_back({pos, end});
  return out;
}

class BtrfsFreeSpace : public FreeSpaceMap {
 public:
  explicit BtrfsFreeSpace(BtrfsVolume& vol) : vol_(vol) {}

  Status unused_ranges(std::vector<std::pair<uint64_t, uint64_t>>& out) override {
    out.clear();
    const Superblock& sb = vol_.super();
    uint64_t dev_end = std::min(vol_.device().size(), sb.dev_total_bytes);
    Ranges allocated, free_phys;
    for (const Chunk& c : vol_.chunks())
      for (uint64_t off : c.copies) allocated.push_back({off, off + c.length});
    if (dev_end > kDeviceReserved) free_phys = subtract(kDeviceReserved, dev_end, allocated);

    // A log tree's blocks and the data it logged are in no extent item until replay: then only unallocated space
    // is certain to be unused.
    if (!sb.log_root) VDKIT_RETURN_IF_ERROR(block_group_free_space(free_phys));

    // Never the superblock copies.
    Ranges supers;
    for (uint64_t m : kSuperMirrors) supers.push_back({m, m + kSuperSize});
    std::sort(free_phys.begin(), free_phys.end());
    Ranges merged;
    for (auto [s, e] : free_phys)
      for (auto [a, b] : subtract(s, e, supers)) {
        if (!merged.empty() && merged.back().second >= a) merged.back().second = std::max(merged.back().second, b);
        else merged.push_back({a, b});
      }
    for (auto [s, e] : merged) out.push_back({s, e - s});
    return Status::Ok();
  }

 private:
  Status block_group_free_space(Ranges& free_phys) {
    const Superblock& sb = vol_.super();
    VDKIT_ASSIGN_OR_RETURN(TreeRoot extent_tree, find_tree_root(vol_, kExtentTreeObjectid));
    TreeRoot bg_tree = extent_tree;
    if (sb.compat_ro & kCompatRoBlockGroupTree) {
      VDKIT_ASSIGN_OR_RETURN(bg_tree, find_tree_root(vol_, kBlockGroupTreeObjectid));
    }
    Ranges groups, used;
    auto on_item = [&](const Key& k, std::span<const uint8_t>) -> Result<bool> {
      if (k.type == kBlockGroupItem) groups.push_back({k.objectid, k.objectid + k.offset});
      else if (k.type == kExtentItem) used.push_back({k.objectid, k.objectid + k.offset});
      else if (k.type == kMetadataItem) used.push_back({k.objectid, k.objectid + sb.nodesize});
      return true;
    };
    VDKIT_RETURN_IF_ERROR(vol_.scan(extent_tree, {0, 0, 0}, Key::max(), on_item).Context("reading the extent tree"));
    if (bg_tree.owner != extent_tree.owner)
      VDKIT_RETURN_IF_ERROR(vol_.scan(bg_tree, {0, 0, 0}, Key::max(), on_item).Context("reading the block group tree"));
    for (auto [gs, ge] : groups) {
      // A block group is exactly one chunk; its free logical ranges are free in every copy.
      const Chunk* chunk = nullptr;
      for (const Chunk& c : vol_.chunks())
        if (c.logical == gs && c.length == ge - gs) chunk = &c;
      if (!chunk)
        return Status::Corrupt("Btrfs on " + vol_.what() + ": block group at logical " + std::to_string(gs) +
                               " matches no chunk");
      for (auto [s, e] : subtract(gs, ge, used))
        for (uint64_t off : chunk->copies) free_phys.push_back({off + (s - gs), off + (e - gs)});
    }
    return Status::Ok();
  }

  BtrfsVolume& vol_;
};

}  // namespace

std::unique_ptr<FreeSpaceMap> make_btrfs_free_space(BtrfsVolume& vol) { return std::make_unique<BtrfsFreeSpace>(vol); }

}  // namespace vdkit::guestfs::btrfs
