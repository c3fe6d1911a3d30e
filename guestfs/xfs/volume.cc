// XfsTree: opening (superblock, bounds, log state), block addressing, v5 block checks, and inode cores v1-v3.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

Result<std::shared_ptr<XfsTree>> XfsTree::Open(std::shared_ptr<BlockDevice> device, std::string what) {
  const uint64_t dev_size = device->size();
  std::vector<uint8_t> sector(static_cast<size_t>(std::min<uint64_t>(dev_size, 32768)));
  if (sector.size() < 512) return Status::Corrupt(what + ": too small for an XFS superblock");
  Status st = device->read(0, sector);
  if (!st.ok()) return st.Context("reading the XFS superblock of " + what);
  auto sb = parse_superblock(sector);
  if (!sb.ok()) return sb.status().Context(what);
  uint64_t fs_bytes = sb->dblocks * sb->block_size;
  if (fs_bytes > dev_size)
    return Status::Corrupt(what + ": the XFS superblock says " + std::to_string(fs_bytes) + " bytes (" +
                           std::to_string(sb->dblocks) + " blocks of " + std::to_string(sb->block_size) +
                           "), the device holds only " + std::to_string(dev_size) + " (truncated image?)");
  std::shared_ptr<XfsTree> t(new XfsTree(std::move(device), std::move(*sb), std::move(what)));
  if (!t->valid_ino(t->sb_.rootino))
    return Status::Corrupt(t->what_ + ": XFS superblock field sb_rootino " + std::to_string(t->sb_.rootino) +
                           " is not an inode of this file system");
  VDKIT_RETURN_IF_ERROR(t->check_log());
  // The root must be a readable directory, or nothing else is worth trying.
  VDKIT_ASSIGN_OR_RETURN(Inode root, t->read_inode(t->sb_.rootino));
  if (!S_ISDIR(root.mode)) return Status::Corrupt(t->what_ + ": the XFS root inode is not a directory");
  return t;
}

std::string XfsTree::describe() const { return "xfs on " + what_; }

std::string XfsTree::state() const {
  std::string s = sb_.crc() ? "v5 (CRC)" : "v4";
  s += ", " + std::to_string(sb_.block_size) + "-byte blocks, " + std::to_string(sb_.inodesize) + "-byte inodes";
  s += sb_.has_ftype() ? ", ftype" : ", no ftype";
  s += log_dirty_ ? ", log dirty (not replayed)" : ", log clean";
  return s;
}

std::vector<std::string> XfsTree::warnings() const {
  std::vector<std::string> w;
  if (log_dirty_) w.push_back(std::string(kDirtyLogWarning) + " (" + describe() + ")");
  if (!log_note_.empty()) w.push_back(describe() + ": " + log_note_);
  return w;
}

bool XfsTree::valid_ino(uint64_t ino) const {
  const int shift = sb_.agblklog + sb_.inopblog;
  uint64_t agno = ino >> shift;
  uint64_t agbno = (ino >> sb_.inopblog) & ((1ull << sb_.agblklog) - 1);
  if (agno >= sb_.agcount || agbno >= sb_.agblocks) return false;
  return agno * sb_.agblocks + agbno < sb_.dblocks;
}

std::string XfsTree::block_name(uint64_t fsb) const {
  uint64_t agno = fsb >> sb_.agblklog, agbno = fsb & ((1ull << sb_.agblklog) - 1);
  return "fs block " + std::to_string(fsb) + " (AG " + std::to_string(agno) + " block " + std::to_string(agbno) + ")";
}

Result<uint64_t> XfsTree::fsb_to_offset(uint64_t fsb, uint64_t count, const std::string& what) const {
  uint64_t agno = fsb >> sb_.agblklog, agbno = fsb & ((1ull << sb_.agblklog) - 1);
  if (agno >= sb_.agcount || count == 0 || count > sb_.agblocks || agbno > sb_.agblocks - count)
    return Status::Corrupt(describe() + ": " + what + " at " + block_name(fsb) + " (+" + std::to_string(count) +
                           " blocks) lies outside the file system");
  uint64_t linear = agno * sb_.agblocks + agbno;
  if (linear + count > sb_.dblocks)
    return Status::Corrupt(describe() + ": " + what + " at " + block_name(fsb) + " runs past the end (" +
                           std::to_string(sb_.dblocks) + " blocks)");
  return linear * sb_.block_size;
}

Status XfsTree::read_at(uint64_t offset, std::span<uint8_t> buf, const std::string& what) {
  Status st = device_->read(offset, buf);
  if (!st.ok()) return st.Context(describe() + ": reading " + what);
  return Status::Ok();
}

Status XfsTree::check_v5_block(std::span<const uint8_t> b, size_t crc_off, size_t blkno_off, uint64_t daddr,
                               size_t uuid_off, size_t owner_off, uint64_t owner, int owner_bytes,
                               const std::string& what) const {
  if (!crc_ok(b, crc_off)) return Status::Corrupt(describe() + ": " + what + ": CRC mismatch");
  if (load_be64(b.data() + blkno_off) != daddr)
    return Status::Corrupt(describe() + ": " + what + ": its self address " + std::to_string(load_be64(b.data() + blkno_off)) +
                           " is not where it was read (" + std::to_string(daddr) + ")");
  if (std::memcmp(b.data() + uuid_off, sb_.metadata_uuid(), 16) != 0)
    return Status::Corrupt(describe() + ": " + what + ": UUID does not match the superblock's");
  uint64_t got = owner_bytes == 8 ? load_be64(b.data() + owner_off) : load_be32(b.data() + owner_off);
  if (got != owner)
    return Status::Corrupt(describe() + ": " + what + ": owner " + std::to_string(got) + ", expected " +
                           std::to_string(owner));
  return Status::Ok();
}

namespace {

timespec decode_time(const uint8_t* p, bool bigtime) {
  timespec t{};
  if (bigtime) {
    // Nanoseconds since 1901-12-13 (the smallest 32-bit time), so no negative values are stored.
    uint64_t v = load_be64(p);
    t.tv_sec = static_cast<time_t>(static_cast<int64_t>(v / 1000000000u) - (int64_t{1} << 31));
    t.tv_nsec = static_cast<long>(v % 1000000000u);
  } else {
    t.tv_sec = static_cast<int32_t>(load_be32(p));
    uint32_t ns = load_be32(p + 4);
    t.tv_nsec = ns < 1000000000u ? static_cast<long>(ns) : 0;
  }
  return t;
}

bool format_fits(uint16_t mode, ForkFormat f) {
  switch (mode & S_IFMT) {
    case S_IFREG: return f == ForkFormat::kExtents || f == ForkFormat::kBtree;
    case S_IFDIR:
    case S_IFLNK: return f == ForkFormat::kLocal || f == ForkFormat::kExtents || f == ForkFormat::kBtree;
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK: return f == ForkFormat::kDev;
    default: return false;
  }
}

}  // namespace

Result<Inode> XfsTree::read_inode(uint64_t ino) {
  const std::string name = "inode " + std::to_string(ino);
  if (!valid_ino(ino)) return Status::Corrupt(describe() + ": " + name + " is not an inode number of this file system");
  const int shift = sb_.agblklog + sb_.inopblog;
  uint64_t agno = ino >> shift, agbno = (ino >> sb_.inopblog) & ((1ull << sb_.agblklog) - 1);
  uint64_t index = ino & ((1ull << sb_.inopblog) - 1);
  uint64_t offset = (agno * sb_.agblocks + agbno) * sb_.block_size + index * sb_.inodesize;
  Inode in;
  in.ino = ino;
  in.raw.resize(sb_.inodesize);
  VDKIT_RETURN_IF_ERROR(read_at(offset, in.raw, name));
  const uint8_t* p = in.raw.data();
  auto bad = [&](const std::string& why) { return Status::Corrupt(describe() + ": " + name + ": " + why); };
  if (load_be16(p) != kInodeMagic) return bad("no inode magic (di_magic)");
  in.version = p[4];
  if (sb_.crc() ? in.version != 3 : (in.version != 1 && in.version != 2))
    return bad("inode version " + std::to_string(in.version) + " on a v" + std::to_string(sb_.version()) +
               " file system");
  if (in.version == 3) {
    if (!crc_ok(in.raw, kInodeCrcOffset)) return bad("CRC mismatch (di_crc)");
    if (load_be64(p + 152) != ino) return bad("di_ino says " + std::to_string(load_be64(p + 152)));
    if (std::memcmp(p + 160, sb_.metadata_uuid(), 16) != 0) return bad("di_uuid does not match the superblock's");
  }
  in.mode = load_be16(p + 2);
  if (in.mode == 0) return Status::Error(ENOENT, describe() + ": " + name + " is not in use");
  in.format = static_cast<ForkFormat>(p[5]);
  if (!format_fits(in.mode, in.format))
    return bad("data fork format " + std::to_string(p[5]) + " does not fit mode " + hex(in.mode));
  in.uid = load_be32(p + 8);
  in.gid = load_be32(p + 12);
  in.nlink = in.version == 1 ? load_be16(p + 6) : load_be32(p + 16);
  in.flags2 = in.version == 3 ? load_be64(p + 120) : 0;
  const bool bigtime = (in.flags2 & kDiflag2Bigtime) != 0;
  in.atime = decode_time(p + 32, bigtime);
  in.mtime = decode_time(p + 40, bigtime);
  in.ctime = decode_time(p + 48, bigtime);
  in.size = load_be64(p + 56);
  in.nblocks = load_be64(p + 64);
  if (in.flags2 & kDiflag2Nrext64) {
    in.nextents = load_be64(p + 24);
    in.anextents = load_be32(p + 76);
  } else {
    in.nextents = load_be32(p + 76);
    in.anextents = load_be16(p + 80);
  }
  in.aformat = static_cast<ForkFormat>(p[83]);
  in.flags = load_be16(p + 90);
  if (in.size > (1ull << 63) - 1) return bad("di_size " + std::to_string(in.size));
  in.fork_start = in.version == 3 ? kInodeCoreV3 : kInodeCoreV2;
  const size_t literal = sb_.inodesize - in.fork_start;
  const size_t forkoff = static_cast<size_t>(p[82]) * 8;
  if (forkoff >= literal) return bad("di_forkoff " + std::to_string(p[82]) + " is past the inode's literal area");
  in.data_fork_size = forkoff ? forkoff : literal;
  in.attr_fork_size = forkoff ? literal - forkoff : 0;
  if (forkoff && in.aformat != ForkFormat::kLocal && in.aformat != ForkFormat::kExtents &&
      in.aformat != ForkFormat::kBtree)
    return bad("attribute fork format " + std::to_string(p[83]));
  if (in.format == ForkFormat::kExtents && in.nextents > in.data_fork_size / 16)
    return bad("di_nextents " + std::to_string(in.nextents) + " does not fit the data fork");
  if (in.format == ForkFormat::kLocal && in.size > in.data_fork_size)
    return bad("di_size " + std::to_string(in.size) + " is larger than its inline data fork");
  return in;
}

Result<TreeStat> XfsTree::stat(uint64_t ino) {
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  TreeStat st;
  st.ino = ino;
  st.mode = in.mode;
  st.uid = in.uid;
  st.gid = in.gid;
  st.nlink = in.nlink;
  st.size = in.size;
  st.blocks = in.nblocks * (sb_.block_size / 512);
  st.atime = in.atime;
  st.mtime = in.mtime;
  st.ctime = in.ctime;
  if (S_ISCHR(in.mode) || S_ISBLK(in.mode)) {
    // The old 32-bit SysV encoding: 14 bits of major, 18 of minor.
    uint32_t dev = load_be32(in.data_fork().data());
    st.rdev = makedev((dev >> 18) & 0x3fff, dev & 0x3ffff);
    st.size = 0;
  }
  return st;
}

}  // namespace vdkit::guestfs::xfs
