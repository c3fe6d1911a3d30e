// XfsTree: a read-only XFS reader (v4 and v5) behind guestfs::FileTree and guestfs::FreeSpaceMap.
//
// Written from the on-disk format (the "XFS Algorithms & Data Structures" document; xfsprogs' xfs_format.h names
// the fields). It reads inode cores v1-v3, data forks in local, extents and btree (bmbt) format, directories in
// shortform, block, leaf and node form, inline and remote symbolic links, regular files with holes and unwritten
// extents (zeros), extended attributes, and the free-space btrees of each allocation group. On v5 every metadata
// block's magic, CRC, self address, owner and UUID are checked, and an error names the block. The log is never
// replayed: a log that needs recovery is reported through warnings() and log_dirty().
//
// Thread-safe: the caches have one mutex, never held during device I/O.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "blockcore/base/block_device.h"
#include "guestfs/file_tree.h"
#include "guestfs/xfs/format.h"

namespace vdkit::guestfs::xfs {

// One decoded inode core with its literal area.
struct Inode {
  uint64_t ino = 0;
  uint16_t mode = 0;
  uint8_t version = 0;
  ForkFormat format = ForkFormat::kDev, aformat = ForkFormat::kExtents;
  uint32_t uid = 0, gid = 0;
  uint64_t nlink = 0;
  uint64_t size = 0, nblocks = 0;
  uint64_t nextents = 0, anextents = 0;
  uint16_t flags = 0;
  uint64_t flags2 = 0;
  timespec atime{}, mtime{}, ctime{};
  std::vector<uint8_t> raw;  // the whole on-disk inode
  size_t fork_start = 0, data_fork_size = 0, attr_fork_size = 0;

  std::span<const uint8_t> data_fork() const { return {raw.data() + fork_start, data_fork_size}; }
  std::span<const uint8_t> attr_fork() const {
    return {raw.data() + fork_start + data_fork_size, attr_fork_size};
  }
};

using ExtentList = std::vector<Extent>;

class XfsTree : public FileTree, public FreeSpaceMap {
 public:
  // Reads and checks the superblock and looks at the log; `what` names the volume in messages ("partition 2").
  static Result<std::shared_ptr<XfsTree>> Open(std::shared_ptr<BlockDevice> device, std::string what);

  uint64_t root_ino() const override { return sb_.rootino; }
  Result<TreeStat> stat(uint64_t ino) override;
  Result<uint64_t> lookup(uint64_t dir_ino, std::string_view name) override;
  Status read_dir(uint64_t dir_ino, std::vector<TreeEntry>& out) override;
  Result<size_t> read(uint64_t ino, uint64_t offset, std::span<uint8_t> buf) override;
  Result<std::string> read_link(uint64_t ino) override;
  Status list_xattrs(uint64_t ino, std::vector<std::string>& out) override;
  Result<std::string> get_xattr(uint64_t ino, const std::string& name) override;
  std::string describe() const override;
  FreeSpaceMap* free_space() override { return this; }
  std::vector<std::string> warnings() const override;
  Status unused_ranges(std::vector<std::pair<uint64_t, uint64_t>>& out) override;

  const Superblock& superblock() const { return sb_; }
  // The internal log holds transactions that were never checkpointed (the guest was not shut down cleanly).
  bool log_dirty() const { return log_dirty_; }
  // "v5 (CRC), 4096-byte blocks, ftype, clean log": for inspection reports.
  std::string state() const;

  // ---- for the reader's own files (bmap, dirs, data, log, free space, xattrs)
  Result<Inode> read_inode(uint64_t ino);
  // Every extent of a fork, sorted by file offset, each checked against the file system's bounds. The data fork's
  // map is cached per inode.
  Result<std::shared_ptr<const ExtentList>> fork_extents(const Inode& inode, bool attr_fork);
  // The byte offset on the device of `count` blocks starting at fs block fsb; an error naming `what` when they do
  // not lie inside one allocation group of the file system.
  Result<uint64_t> fsb_to_offset(uint64_t fsb, uint64_t count, const std::string& what) const;
  // Reads bytes from the device, naming what was being read in the error.
  Status read_at(uint64_t offset, std::span<uint8_t> buf, const std::string& what);
  // Reads the `length` bytes at file-block offset `fileblock` of a fork through its extents (dir, attr and remote
  // symlink blocks): a hole or an unwritten extent there is corruption.
  Result<std::vector<uint8_t>> read_mapped(const ExtentList& extents, uint64_t fileblock, uint32_t length,
                                           const std::string& what);
  // Checks a v5 metadata block's CRC, self address (in 512-byte units), UUID and owner; `what` names the block.
  Status check_v5_block(std::span<const uint8_t> block, size_t crc_off, size_t blkno_off, uint64_t expected_daddr,
                        size_t uuid_off, size_t owner_off, uint64_t owner, int owner_bytes,
                        const std::string& what) const;
  bool valid_ino(uint64_t ino) const;
  std::string block_name(uint64_t fsb) const;  // "fs block 1234 (AG 0 block 1234)"

 private:
  XfsTree(std::shared_ptr<BlockDevice> device, Superblock sb, std::string what)
      : device_(std::move(device)), sb_(std::move(sb)), what_(std::move(what)) {}
  Status check_log();
  Status walk_bmbt(const Inode& inode, bool attr, uint64_t fsb, int level, std::unordered_set<uint64_t>& visited,
                   ExtentList& out);
  Status dir_entries(const Inode& dir, std::vector<TreeEntry>& out);
  Status shortform_entries(const Inode& dir, std::vector<TreeEntry>& out);
  Status data_block_entries(const Inode& dir, std::span<const uint8_t> block, uint64_t daddr, bool single,
                            std::vector<TreeEntry>& out);

  struct DirCacheEntry {
    std::vector<TreeEntry> entries;
    std::unordered_map<std::string, size_t> by_name;
  };
  Result<std::shared_ptr<const DirCacheEntry>> cached_dir(uint64_t ino);

  std::shared_ptr<BlockDevice> device_;
  Superblock sb_;
  std::string what_;
  bool log_dirty_ = false;
  std::string log_note_;  // why the log could not be judged, when it could not

  std::mutex mu_;  // the caches below
  std::unordered_map<uint64_t, std::shared_ptr<const ExtentList>> extent_cache_;
  std::unordered_map<uint64_t, std::shared_ptr<const DirCacheEntry>> dir_cache_;
};

// "dirty" warning text shared by the reader and the reports.
inline constexpr const char* kDirtyLogWarning =
    "XFS log is dirty: the guest was not shut down cleanly; what vdkit reads may miss its last writes";

}  // namespace vdkit::guestfs::xfs
