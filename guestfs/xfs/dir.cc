// XfsTree directories: shortform (in the inode), block form (one directory block with its leaf at the end), and the
// leaf and node forms (data blocks below 32 GiB of directory address space, leaf/node blocks from there, free-index
// blocks from 64 GiB). Entries are read from the data blocks; the index blocks are checked, not needed for reading.
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

namespace {

// Directory blocks one directory may have (data, leaf, node and free-index blocks together).
constexpr uint64_t kMaxDirBlocks = 1u << 20;
constexpr uint64_t kDirFreeOffset = 64ull << 30;

uint32_t type_of_ftype(uint8_t ft) {
  switch (ft) {
    case kFtReg: return S_IFREG;
    case kFtDir: return S_IFDIR;
    case kFtChr: return S_IFCHR;
    case kFtBlk: return S_IFBLK;
    case kFtFifo: return S_IFIFO;
    case kFtSock: return S_IFSOCK;
    case kFtSymlink: return S_IFLNK;
    default: return 0;
  }
}

bool valid_name(std::string_view n) {
  return !n.empty() && n.find('/') == std::string_view::npos && n.find('\0') == std::string_view::npos;
}

}  // namespace

Status XfsTree::shortform_entries(const Inode& dir, std::vector<TreeEntry>& out) {
  const std::span<const uint8_t> f = dir.data_fork().first(static_cast<size_t>(dir.size));
  auto bad = [&](const std::string& why) {
    return Status::Corrupt(describe() + ": shortform directory inode " + std::to_string(dir.ino) + ": " + why);
  };
  if (f.size() < 6) return bad("shorter than its header");
  const size_t count = f[0], i8count = f[1];
  if (i8count > count) return bad("i8count " + std::to_string(i8count) + " above count " + std::to_string(count));
  const size_t ino_bytes = i8count ? 8 : 4;
  size_t pos = 2 + ino_bytes;
  if (pos > f.size()) return bad("shorter than its header");
  const uint64_t parent = ino_bytes == 8 ? load_be64(f.data() + 2) : load_be32(f.data() + 2);
  if (!valid_ino(parent)) return bad("parent inode " + std::to_string(parent) + " is not an inode number");
  const size_t ftype = sb_.has_ftype() ? 1 : 0;
  for (size_t i = 0; i < count; ++i) {
    if (pos + 3 > f.size()) return bad("entry " + std::to_string(i) + " runs past the end");
    const size_t namelen = f[pos];
    const size_t len = 3 + namelen + ftype + ino_bytes;
    if (namelen == 0 || pos + len > f.size()) return bad("entry " + std::to_string(i) + " runs past the end");
    TreeEntry e;
    e.name.assign(reinterpret_cast<const char*>(f.data() + pos + 3), namelen);
    const uint8_t* after = f.data() + pos + 3 + namelen;
    e.type = ftype ? type_of_ftype(after[0]) : 0;
    e.ino = ino_bytes == 8 ? load_be64(after + ftype) : load_be32(after + ftype);
    if (!valid_name(e.name) || e.name == "." || e.name == "..") return bad("entry " + std::to_string(i) + " has a bad name");
    if (!valid_ino(e.ino)) return bad("entry '" + e.name + "' names inode " + std::to_string(e.ino));
    out.push_back(std::move(e));
    pos += len;
  }
  return Status::Ok();
}

Status XfsTree::data_block_entries(const Inode& dir, std::span<const uint8_t> b, uint64_t daddr, bool single,
                                   std::vector<TreeEntry>& out) {
  const std::string what = std::string(single ? "directory block" : "directory data block") + " at sector " +
                           std::to_string(daddr) + " of inode " + std::to_string(dir.ino);
  auto bad = [&](const std::string& why) { return Status::Corrupt(describe() + ": " + what + ": " + why); };
  const uint32_t magic = load_be32(b.data());
  size_t pos;
  if (sb_.crc()) {
    if (magic != (single ? kDir3BlockMagic : kDir3DataMagic)) return bad("bad magic " + hex(magic));
    VDKIT_RETURN_IF_ERROR(check_v5_block(b, 4, 8, daddr, 24, 40, dir.ino, 8, what));
    pos = kDirDataHeaderV5;
  } else {
    if (magic != (single ? kDir2BlockMagic : kDir2DataMagic)) return bad("bad magic " + hex(magic));
    pos = kDirDataHeaderV4;
  }
  size_t end = b.size();
  if (single) {
    // The block tail (count, stale) and count leaf entries of 8 bytes close the block.
    const uint64_t count = load_be32(b.data() + b.size() - 8);
    if (count > (b.size() - pos - 8) / 8) return bad("block tail count " + std::to_string(count));
    end = b.size() - 8 - static_cast<size_t>(count) * 8;
  }
  const size_t ftype = sb_.has_ftype() ? 1 : 0;
  while (pos < end) {
    if (end - pos < 8) return bad("an entry at offset " + std::to_string(pos) + " runs past the data area");
    if (load_be16(b.data() + pos) == 0xffff) {  // unused space: freetag, length, ..., tag
      const size_t len = load_be16(b.data() + pos + 2);
      if (len < 8 || len % 8 || len > end - pos)
        return bad("free space at offset " + std::to_string(pos) + " has length " + std::to_string(len));
      pos += len;
      continue;
    }
    const size_t namelen = b[pos + 8];
    const size_t len = align_down(8 + 1 + namelen + ftype + 2 + 7, 8);
    if (namelen == 0 || len > end - pos) return bad("the entry at offset " + std::to_string(pos) + " runs past the data area");
    if (load_be16(b.data() + pos + len - 2) != pos) return bad("the entry at offset " + std::to_string(pos) + " has a bad tag");
    TreeEntry e;
    e.ino = load_be64(b.data() + pos);
    e.name.assign(reinterpret_cast<const char*>(b.data() + pos + 9), namelen);
    e.type = ftype ? type_of_ftype(b[pos + 9 + namelen]) : 0;
    pos += len;
    if (e.name == "." || e.name == "..") continue;
    if (!valid_name(e.name)) return bad("an entry has a bad name");
    if (!valid_ino(e.ino)) return bad("entry '" + e.name + "' names inode " + std::to_string(e.ino));
    if (out.size() >= kMaxDirEntries)
      return bad("more than " + std::to_string(kMaxDirEntries) + " entries in the directory");
    out.push_back(std::move(e));
  }
  return Status::Ok();
}

Status XfsTree::dir_entries(const Inode& dir, std::vector<TreeEntry>& out) {
  out.clear();
  if (dir.format == ForkFormat::kLocal) return shortform_entries(dir, out);
  VDKIT_ASSIGN_OR_RETURN(auto extents, fork_extents(dir, false));
  const uint64_t bs = sb_.block_size, fsbs = 1ull << sb_.dirblklog, dbs = sb_.dir_block_size();
  const uint64_t leaf_fb = kDirLeafOffset / bs, free_fb = kDirFreeOffset / bs;
  // Block form when the fork maps nothing past the first directory block (xfs_dir2_isblock).
  const bool single = !extents->empty() && extents->back().startoff + extents->back().blockcount == fsbs;
  if (single && dir.size != dbs)
    return Status::Corrupt(describe() + ": block-form directory inode " + std::to_string(dir.ino) + " has di_size " +
                           std::to_string(dir.size));
  // The directory blocks present, by their first file block.
  std::set<uint64_t> blocks;
  for (const Extent& e : *extents) {
    for (uint64_t fb = e.startoff - e.startoff % fsbs; fb < e.startoff + e.blockcount; fb += fsbs) {
      blocks.insert(fb);
      if (blocks.size() > kMaxDirBlocks)
        return Status::Corrupt(describe() + ": directory inode " + std::to_string(dir.ino) + " has more than " +
                               std::to_string(kMaxDirBlocks) + " blocks");
    }
  }
  if (single && (blocks.size() != 1 || *blocks.begin() != 0))
    return Status::Corrupt(describe() + ": block-form directory inode " + std::to_string(dir.ino) +
                           " is not mapped as one block at offset 0");
  for (uint64_t fb : blocks) {
    auto it = std::upper_bound(extents->begin(), extents->end(), fb,
                               [](uint64_t v, const Extent& e) { return v < e.startoff; });
    if (it == extents->begin() || fb >= std::prev(it)->startoff + std::prev(it)->blockcount)
      return Status::Corrupt(describe() + ": directory inode " + std::to_string(dir.ino) + ": directory block at " +
                             "file block " + std::to_string(fb) + " is only partly mapped");
    const uint64_t fsb = std::prev(it)->startblock + (fb - std::prev(it)->startoff);
    VDKIT_ASSIGN_OR_RETURN(uint64_t off, fsb_to_offset(fsb, 1, "directory block"));
    const uint64_t daddr = off / 512;
    const std::string what = "directory block " + block_name(fsb) + " of inode " + std::to_string(dir.ino);
    VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> b, read_mapped(*extents, fb, static_cast<uint32_t>(dbs), what));
    if (fb < leaf_fb) {
      VDKIT_RETURN_IF_ERROR(data_block_entries(dir, b, daddr, single, out));
    } else if (fb < free_fb) {
      const uint16_t magic = load_be16(b.data() + 8);
      const bool known = sb_.crc() ? (magic == kDir3Leaf1Magic || magic == kDir3LeafNMagic || magic == kDa3NodeMagic)
                                   : (magic == kDir2Leaf1Magic || magic == kDir2LeafNMagic || magic == kDaNodeMagic);
      if (!known) return Status::Corrupt(describe() + ": " + what + ": bad leaf/node magic " + hex(magic));
      if (sb_.crc()) VDKIT_RETURN_IF_ERROR(check_v5_block(b, kDa3CrcOffset, 16, daddr, 32, 48, dir.ino, 8, what));
    } else {
      const uint32_t magic = load_be32(b.data());
      if (magic != (sb_.crc() ? kDir3FreeMagic : kDir2FreeMagic))
        return Status::Corrupt(describe() + ": " + what + ": bad free-index magic " + hex(magic));
      if (sb_.crc()) VDKIT_RETURN_IF_ERROR(check_v5_block(b, 4, 8, daddr, 24, 40, dir.ino, 8, what));
    }
  }
  return Status::Ok();
}

Result<std::shared_ptr<const XfsTree::DirCacheEntry>> XfsTree::cached_dir(uint64_t ino) {
  {
    std::lock_guard lock(mu_);
    auto it = dir_cache_.find(ino);
    if (it != dir_cache_.end()) return it->second;
  }
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  if (!S_ISDIR(in.mode)) return Status::Error(ENOTDIR, describe() + ": inode " + std::to_string(ino) + " is not a directory");
  auto d = std::make_shared<DirCacheEntry>();
  VDKIT_RETURN_IF_ERROR(dir_entries(in, d->entries));
  for (size_t i = 0; i < d->entries.size(); ++i) {
    if (d->entries[i].ino == ino)
      return Status::Corrupt(describe() + ": directory inode " + std::to_string(ino) + " lists itself as '" +
                             d->entries[i].name + "' (a directory loop)");
    if (!d->by_name.emplace(d->entries[i].name, i).second)
      return Status::Corrupt(describe() + ": directory inode " + std::to_string(ino) + " names '" +
                             d->entries[i].name + "' twice");
  }
  std::shared_ptr<const DirCacheEntry> result = std::move(d);
  std::lock_guard lock(mu_);
  if (dir_cache_.size() >= 64) dir_cache_.clear();
  dir_cache_[ino] = result;
  return result;
}

Status XfsTree::read_dir(uint64_t dir_ino, std::vector<TreeEntry>& out) {
  VDKIT_ASSIGN_OR_RETURN(auto d, cached_dir(dir_ino));
  out = d->entries;
  return Status::Ok();
}

Result<uint64_t> XfsTree::lookup(uint64_t dir_ino, std::string_view name) {
  VDKIT_ASSIGN_OR_RETURN(auto d, cached_dir(dir_ino));
  auto it = d->by_name.find(std::string(name));
  if (it == d->by_name.end())
    return Status::Error(ENOENT, describe() + ": no '" + std::string(name) + "' in directory inode " +
                                     std::to_string(dir_ino));
  return d->entries[it->second].ino;
}

}  // namespace vdkit::guestfs::xfs
