// XfsTree file data (holes and unwritten extents read as zeros) and symbolic links (inline, or remote blocks with a
// v5 header each).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

Result<size_t> XfsTree::read(uint64_t ino, uint64_t offset, std::span<uint8_t> buf) {
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  if (S_ISDIR(in.mode)) return Status::Error(EISDIR, describe() + ": inode " + std::to_string(ino) + " is a directory");
  if (!S_ISREG(in.mode))
    return Status::Error(EINVAL, describe() + ": inode " + std::to_string(ino) + " is not a regular file");
  if (in.flags & kDiflagRealtime)
    return Status::Unsupported(describe() + ": inode " + std::to_string(ino) +
                               " keeps its data on a realtime device, which vdkit does not read");
  if (offset >= in.size || buf.empty()) return size_t{0};
  const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), in.size - offset));
  VDKIT_ASSIGN_OR_RETURN(auto extents, fork_extents(in, false));
  const uint64_t bs = sb_.block_size;
  size_t done = 0;
  while (done < want) {
    const uint64_t pos = offset + done;
    const uint64_t fb = pos / bs;
    auto it = std::upper_bound(extents->begin(), extents->end(), fb,
                               [](uint64_t v, const Extent& e) { return v < e.startoff; });
    uint64_t run;  // bytes from pos that this extent (or hole) covers
    const Extent* e = nullptr;
    if (it != extents->begin() && fb < std::prev(it)->startoff + std::prev(it)->blockcount) {
      e = &*std::prev(it);
      run = (e->startoff + e->blockcount) * bs - pos;
    } else {
      run = it == extents->end() ? UINT64_MAX : it->startoff * bs - pos;  // a hole up to the next extent
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(run, want - done));
    std::span<uint8_t> dst(buf.data() + done, n);
    if (!e || e->unwritten) {
      std::memset(dst.data(), 0, n);
    } else {
      VDKIT_ASSIGN_OR_RETURN(uint64_t start,
                             fsb_to_offset(e->startblock, e->blockcount, "data of inode " + std::to_string(ino)));
      VDKIT_RETURN_IF_ERROR(read_at(start + (pos - e->startoff * bs), dst, "data of inode " + std::to_string(ino)));
    }
    done += n;
  }
  return done;
}

Result<std::string> XfsTree::read_link(uint64_t ino) {
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  const std::string name = "symbolic link inode " + std::to_string(ino);
  if (!S_ISLNK(in.mode)) return Status::Error(EINVAL, describe() + ": inode " + std::to_string(ino) + " is not a symbolic link");
  if (in.size == 0 || in.size > kMaxSymlinkLen)
    return Status::Corrupt(describe() + ": " + name + " has length " + std::to_string(in.size));
  const size_t len = static_cast<size_t>(in.size);
  std::string target;
  if (in.format == ForkFormat::kLocal) {
    target.assign(reinterpret_cast<const char*>(in.data_fork().data()), len);
  } else {
    VDKIT_ASSIGN_OR_RETURN(auto extents, fork_extents(in, false));
    const uint64_t bs = sb_.block_size;
    const size_t per_block = sb_.crc() ? bs - kSymlinkHeaderV5 : bs;
    const uint64_t nblocks = div_round_up(len, per_block);
    for (uint64_t fb = 0; fb < nblocks; ++fb) {
      const std::string what = "block " + std::to_string(fb) + " of " + name;
      VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> b, read_mapped(*extents, fb, static_cast<uint32_t>(bs), what));
      const size_t want = std::min(per_block, len - target.size());
      if (sb_.crc()) {
        // xfs_dsymlink_hdr: magic, offset, bytes, crc, uuid, owner, blkno, lsn.
        if (load_be32(b.data()) != kSymlinkMagic) return Status::Corrupt(describe() + ": " + what + ": bad magic");
        auto it = std::upper_bound(extents->begin(), extents->end(), fb,
                                   [](uint64_t v, const Extent& e) { return v < e.startoff; });
        const Extent& e = *std::prev(it);
        VDKIT_ASSIGN_OR_RETURN(uint64_t off, fsb_to_offset(e.startblock + (fb - e.startoff), 1, what));
        VDKIT_RETURN_IF_ERROR(check_v5_block(b, 12, 40, off / 512, 16, 32, ino, 8, what));
        if (load_be32(b.data() + 4) != target.size() || load_be32(b.data() + 8) != want)
          return Status::Corrupt(describe() + ": " + what + ": header says offset " +
                                 std::to_string(load_be32(b.data() + 4)) + ", " +
                                 std::to_string(load_be32(b.data() + 8)) + " bytes");
        target.append(reinterpret_cast<const char*>(b.data() + kSymlinkHeaderV5), want);
      } else {
        target.append(reinterpret_cast<const char*>(b.data()), want);
      }
    }
  }
  if (target.find('\0') != std::string::npos)
    return Status::Corrupt(describe() + ": " + name + " holds a NUL byte");
  return target;
}

}  // namespace vdkit::guestfs::xfs
