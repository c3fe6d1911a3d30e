// The subvolumes of a Btrfs: ids, names and paths from the root tree's ROOT_ITEM/ROOT_BACKREF items, the default
// subvolume, and choosing one by id or path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "guestfs/btrfs/volume.h"

namespace vdkit::guestfs::btrfs {

constexpr size_t kMaxSubvolumes = 1u << 16;
constexpr size_t kMaxSubvolumeDepth = 256;  // subvolumes inside subvolumes: paths are resolved recursively

struct Subvolume {
  uint64_t id = 0;
  uint64_t parent_id = 0;  // 0 for the top level (id 5)
  std::string path;        // from the top level, without a leading '/': "@/.snapshots/1/snapshot"; "" for id 5
  TreeRoot root;
  uint64_t root_dirid = 256;
  uint64_t generation = 0, flags = 0;
  bool readonly = false;
  std::string uuid, parent_uuid;  // parent_uuid set for snapshots
  int64_t otime = 0;              // creation time
};

// Every subvolume, sorted by id (the top level first), with its path. A subvolume whose back reference is
// missing (being deleted) is left out.
Result<std::vector<Subvolume>> list_subvolumes(BtrfsVolume& vol);

// The subvolume `mount` uses without subvol=/subvolid=: the root tree's "default" entry, else the top level.
Result<uint64_t> default_subvolume_id(BtrfsVolume& vol);

// Finds a subvolume by "ID" (digits) or path ("/@/home", "@/home"; "/" is the top level).
const Subvolume* find_subvolume(const std::vector<Subvolume>& all, const std::string& id_or_path);
const Subvolume* find_subvolume_by_id(const std::vector<Subvolume>& all, uint64_t id);

}  // namespace vdkit::guestfs::btrfs

namespace vdkit::guestfs::btrfs {
// The root of tree `id` (extent tree 2, block group tree 11, ...) from its ROOT_ITEM in the root tree.
Result<TreeRoot> find_tree_root(BtrfsVolume& vol, uint64_t id);
}  // namespace vdkit::guestfs::btrfs
