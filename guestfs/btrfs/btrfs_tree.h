// BtrfsTree: a read-only guestfs::FileTree over one subvolume of a Btrfs (nested subvolumes appear as their
// directories), with the subvolume list and the map of unused space.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "guestfs/btrfs/subvolumes.h"
#include "guestfs/btrfs/volume.h"
#include "guestfs/file_tree.h"
#include "guestfs/free_space.h"

namespace vdkit::guestfs::btrfs {

// Limits on what one call may make the reader do.
constexpr size_t kMaxDirEntries = 1u << 20;
constexpr size_t kMaxXattrs = 1u << 16;
constexpr uint64_t kMaxSymlinkBytes = 4096;
// Inode numbers shown: subvolume slot << 48 | the subvolume's own inode number.
constexpr int kSlotShift = 48;

class BtrfsTree : public FileTree {
 public:
  // Opens the Btrfs on dev and shows `subvol`: "" for the default subvolume, else an id or a path from the top
  // level ("@/.snapshots/1/snapshot", "/" for the top level). `what` names the device in messages.
  static Result<std::shared_ptr<BtrfsTree>> open(std::shared_ptr<BlockDevice> dev, const std::string& what,
                                                 const std::string& subvol = "");

  uint64_t root_ino() const override;
  Result<TreeStat> stat(uint64_t ino) override;
  Result<uint64_t> lookup(uint64_t dir_ino, std::string_view name) override;
  Status read_dir(uint64_t dir_ino, std::vector<TreeEntry>& out) override;
  Result<size_t> read(uint64_t ino, uint64_t offset, std::span<uint8_t> buf) override;
  Result<std::string> read_link(uint64_t ino) override;
  Status list_xattrs(uint64_t ino, std::vector<std::string>& out) override;
  Result<std::string> get_xattr(uint64_t ino, const std::string& name) override;
  std::string describe() const override;
  FreeSpaceMap* free_space() override { return free_space_.get(); }
  std::vector<std::string> warnings() const override;

  BtrfsVolume& volume() { return *vol_; }
  const std::vector<Subvolume>& subvolumes() const { return subvols_; }
  uint64_t default_subvolume() const { return default_id_; }
  const Subvolume& shown() const { return *slots_[0]; }

 private:
  BtrfsTree() = default;
  struct Loc {
    const Subvolume* sv;
    uint64_t ino;
  };
  Result<Loc> decode(uint64_t ino) const;
  Result<uint64_t> encode(const Subvolume& sv, uint64_t ino);
  // What a directory entry's location key points at, as a shown inode number.
  Result<uint64_t> target_of(const Subvolume& in, const Key& location);
  Result<std::vector<uint8_t>> inode_item(const Loc& l);
  Result<std::vector<uint8_t>> dir_items(const Loc& dir, uint8_t type, std::string_view name);
  Status read_extent(const Loc& l, const Key& k, std::span<const uint8_t> fe, uint64_t pos, std::span<uint8_t> out);

  std::unique_ptr<BtrfsVolume> vol_;
  std::vector<Subvolume> subvols_;
  std::vector<const Subvolume*> slots_;  // slot 0: the subvolume shown at /
  uint64_t default_id_ = kFsTreeObjectid;
  std::unique_ptr<FreeSpaceMap> free_space_;
  // The last decompressed extent, so sequential reads of one extent inflate it once.
  uint64_t cached_extent_ = ~0ull;
  uint8_t cached_compression_ = 0;
  std::vector<uint8_t> cached_data_;
};

// The map of unused space of a Btrfs device (free_space.cc).
std::unique_ptr<FreeSpaceMap> make_btrfs_free_space(BtrfsVolume& vol);

}  // namespace vdkit::guestfs::btrfs
