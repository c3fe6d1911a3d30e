// BtrfsVolume: one Btrfs device read from its superblock: checksums, the logical-to-physical chunk map, and verified
// tree blocks walked in key order. What the trees mean (subvolumes, inodes, files) is in btrfs_tree.h.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"
#include "guestfs/btrfs/checksum.h"
#include "guestfs/btrfs/format.h"

namespace vdkit::guestfs::btrfs {

// Limits on what a hostile image can make us do.
constexpr uint64_t kMaxChunks = 1u << 17;
constexpr uint32_t kMaxStripes = 256;
constexpr size_t kBlockCacheBytes = 32u << 20;

struct Superblock {
  uint8_t fsid[16] = {}, metadata_uuid[16] = {};
  uint64_t generation = 0, root = 0, chunk_root = 0, log_root = 0, total_bytes = 0, bytes_used = 0, num_devices = 0;
  uint32_t sectorsize = 0, nodesize = 0;
  uint64_t chunk_root_generation = 0, compat_ro = 0, incompat = 0;
  uint16_t csum_type = 0;
  uint8_t root_level = 0, chunk_root_level = 0, log_root_level = 0;
  uint64_t devid = 0, dev_total_bytes = 0;
  std::string label;
  std::vector<uint8_t> sys_chunk_array;
};
std::string uuid_string(const uint8_t u[16]);

// A chunk: logical [logical, logical + length) stored at `copies` (physical offsets on this device: one for
// single, two for DUP, one per mirror of RAID1* that this device holds).
struct Chunk {
  uint64_t logical = 0, length = 0, type = 0;
  std::vector<uint64_t> copies;
};

// Where a tree starts, and what its root block must say about itself.
struct TreeRoot {
  uint64_t bytenr = 0;
  uint8_t level = 0;
  uint64_t generation = 0;
  uint64_t owner = 0;  // the tree's objectid
};

// A tree block that passed its checksum and structure checks (sorted keys, items inside the block).
class TreeBlock {
 public:
  std::vector<uint8_t> data;
  uint64_t bytenr = 0, generation = 0, owner = 0;
  uint8_t level = 0;
  uint32_t nritems = 0;

  Key key(uint32_t i) const { return Key::load(data.data() + hdr::kSize + i * (level ? kKeyPtrSize : kItemSize)); }
  uint64_t child(uint32_t i) const { return load_le64(data.data() + hdr::kSize + i * kKeyPtrSize + kKeySize); }
  uint64_t child_generation(uint32_t i) const {
    return load_le64(data.data() + hdr::kSize + i * kKeyPtrSize + kKeySize + 8);
  }
  std::span<const uint8_t> item(uint32_t i) const {
    const uint8_t* p = data.data() + hdr::kSize + i * kItemSize + kKeySize;
    return {data.data() + hdr::kSize + load_le32(p), load_le32(p + 4)};
  }
};

// Called for each item of a scan; returns false to stop.
using ItemFn = std::function<Result<bool>(const Key&, std::span<const uint8_t>)>;

class BtrfsVolume {
 public:
  // Reads and checks the primary superblock, the system chunk array and the chunk tree. `what` names the device in
  // messages ("partition 2").
  static Result<std::unique_ptr<BtrfsVolume>> open(std::shared_ptr<BlockDevice> dev, std::string what);

  const Superblock& super() const { return sb_; }
  const std::vector<Chunk>& chunks() const { return chunks_; }
  const std::string& what() const { return what_; }
  BlockDevice& device() { return *dev_; }

  // Reads logical bytes (data extents); the range may span chunks. Reads the first copy of each chunk.
  Status read_logical(uint64_t logical, std::span<uint8_t> buf);

  TreeRoot root_tree() const { return {sb_.root, sb_.root_level, sb_.generation, kRootTreeObjectid}; }
  TreeRoot chunk_tree() const { return {sb_.chunk_root, sb_.chunk_root_level, sb_.chunk_root_generation, kChunkTreeObjectid}; }

  // Visits the items with lo <= key <= hi in key order.
  Status scan(const TreeRoot& root, const Key& lo, const Key& hi, const ItemFn& fn);
  // The item with the largest key <= key, if any.
  Result<std::optional<std::pair<Key, std::vector<uint8_t>>>> find_last_le(const TreeRoot& root, const Key& key);
  // The item with exactly this key, if any.
  Result<std::optional<std::vector<uint8_t>>> find(const TreeRoot& root, const Key& key);

  // Reads a tree block and checks it against what its parent (or the superblock / root item) says of it.
  Result<std::shared_ptr<const TreeBlock>> read_block(uint64_t bytenr, int level, uint64_t generation, uint64_t owner,
                                                      const Key* first_key);

 private:
  BtrfsVolume() = default;
  Status read_super();
  Status load_chunk(const Key& key, std::span<const uint8_t> item, bool from_sys_array);
  Status load_chunks();
  Result<const Chunk*> chunk_of(uint64_t logical, uint64_t length) const;
  Result<std::shared_ptr<TreeBlock>> load_block(uint64_t bytenr, uint64_t physical);
  Status check_structure(const TreeBlock& b) const;
  Status scan_block(const TreeBlock& b, const Key& lo, const Key& hi, const Key* upper, const ItemFn& fn, bool& stop,
                    uint64_t owner);
  std::string block_name(uint64_t bytenr) const;

  std::shared_ptr<BlockDevice> dev_;
  std::string what_;
  Superblock sb_;
  Checksum csum_;
  std::vector<Chunk> chunks_;  // sorted by logical, not overlapping

  // LRU of verified blocks by bytenr.
  std::list<std::shared_ptr<const TreeBlock>> lru_;
  std::unordered_map<uint64_t, std::list<std::shared_ptr<const TreeBlock>>::iterator> cache_;
  size_t cache_bytes_ = 0;
};

}  // namespace vdkit::guestfs::btrfs
