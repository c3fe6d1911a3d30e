// The XFS superblock: decoded and checked field by field before anything else is read, and the CRC32c of v5 metadata.
#include <ext2fs/ext2fs.h>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/format.h"

namespace vdkit::guestfs::xfs {

uint32_t xfs_crc(std::span<const uint8_t> buf, size_t crc_offset) {
  // crc32c with seed ~0 over the buffer, the crc field read as zeros; stored inverted (xfs_start_cksum/xfs_end_cksum).
  static const uint8_t zeros[4] = {};
  uint32_t crc = ext2fs_crc32c_le(~0u, buf.data(), crc_offset);
  crc = ext2fs_crc32c_le(crc, zeros, 4);
  crc = ext2fs_crc32c_le(crc, buf.data() + crc_offset + 4, buf.size() - crc_offset - 4);
  return ~crc;
}

namespace {

int log2_exact(uint64_t v) {
  int l = 0;
  while ((1ull << l) < v && l < 63) ++l;
  return l;
}

Status bad(const std::string& field, const std::string& why) {
  return Status::Corrupt("XFS superblock field " + field + ": " + why);
}

}  // namespace

Result<Superblock> parse_superblock(std::span<const uint8_t> s) {
  if (s.size() < 512) return Status::Corrupt("XFS superblock: the device is smaller than one sector");
  const uint8_t* p = s.data();
  if (load_be32(p) != kSbMagic) return Status::Corrupt("no XFS superblock (sb_magicnum is not XFSB)");
  Superblock sb;
  sb.block_size = load_be32(p + 4);
  sb.dblocks = load_be64(p + 8);
  sb.logstart = load_be64(p + 48);
  sb.rootino = load_be64(p + 56);
  sb.agblocks = load_be32(p + 84);
  sb.agcount = load_be32(p + 88);
  sb.logblocks = load_be32(p + 96);
  sb.versionnum = load_be16(p + 100);
  sb.sectsize = load_be16(p + 102);
  sb.inodesize = load_be16(p + 104);
  sb.inopblock = load_be16(p + 106);
  size_t n = 0;
  while (n < 12 && p[108 + n]) ++n;
  sb.label.assign(reinterpret_cast<const char*>(p + 108), n);
  sb.blocklog = p[120];
  sb.sectlog = p[121];
  sb.inodelog = p[122];
  sb.inopblog = p[123];
  sb.agblklog = p[124];
  sb.dirblklog = p[192];
  sb.icount = load_be64(p + 128);
  sb.ifree = load_be64(p + 136);
  sb.fdblocks = load_be64(p + 144);
  std::copy(p + 32, p + 48, sb.uuid);
  const uint8_t inprogress = p[126];

  int version = sb.version();
  if (version != 4 && version != 5)
    return bad("sb_versionnum", "version " + std::to_string(version) + " (only 4 and 5 exist since 2003)");
  if (version == 4 && !(sb.versionnum & kVersionDirV2Bit))
    return bad("sb_versionnum", "version 1 directories (IRIX-era) are not supported");
  if (version == 5 || (sb.versionnum & kVersionMoreBitsBit)) sb.features2 = load_be32(p + 200);
  if (inprogress) return bad("sb_inprogress", "mkfs.xfs did not finish this file system");

  if (sb.sectsize < 512 || sb.sectsize > 32768 || !is_power_of_two(sb.sectsize) ||
      sb.sectlog != log2_exact(sb.sectsize))
    return bad("sb_sectsize", std::to_string(sb.sectsize) + " with sb_sectlog " + std::to_string(sb.sectlog));
  if (sb.block_size < 512 || sb.block_size > 65536 || !is_power_of_two(sb.block_size) ||
      sb.blocklog != log2_exact(sb.block_size) || sb.block_size < sb.sectsize)
    return bad("sb_blocksize", std::to_string(sb.block_size) + " with sb_blocklog " + std::to_string(sb.blocklog));
  if (sb.inodesize < 256 || sb.inodesize > 2048 || !is_power_of_two(sb.inodesize) ||
      sb.inodelog != log2_exact(sb.inodesize) || (version == 5 && sb.inodesize < 512) ||
      sb.inodesize > sb.block_size)
    return bad("sb_inodesize", std::to_string(sb.inodesize));
  if (sb.inopblock != sb.block_size / sb.inodesize || sb.inopblog != sb.blocklog - sb.inodelog)
    return bad("sb_inopblock", std::to_string(sb.inopblock) + " does not match the block and inode sizes");
  if (sb.agblocks < 16 || sb.agblklog != log2_exact(sb.agblocks) || sb.agblklog > 31)
    return bad("sb_agblocks", std::to_string(sb.agblocks) + " with sb_agblklog " + std::to_string(sb.agblklog));
  if (sb.agcount == 0 || sb.dblocks == 0 || sb.dblocks > static_cast<uint64_t>(sb.agcount) * sb.agblocks ||
      sb.dblocks <= static_cast<uint64_t>(sb.agcount - 1) * sb.agblocks)
    return bad("sb_dblocks", std::to_string(sb.dblocks) + " blocks do not make " + std::to_string(sb.agcount) +
                                 " allocation groups of " + std::to_string(sb.agblocks));
  if (sb.agblklog + sb.inopblog > 56) return bad("sb_agblklog", "inode numbers would not fit in 64 bits");
  if (sb.blocklog + sb.dirblklog > 16) return bad("sb_dirblklog", std::to_string(sb.dirblklog));
  if (!checked_mul(sb.dblocks, sb.block_size)) return bad("sb_dblocks", "overflows");
  if (sb.rootino == 0) return bad("sb_rootino", "0");
  if (sb.logstart != 0 && sb.logblocks == 0) return bad("sb_logblocks", "0 for an internal log");

  if (version == 5) {
    if (s.size() < sb.sectsize) return Status::Corrupt("XFS superblock: shorter than its sector");
    if (!crc_ok(s.first(sb.sectsize), kSbCrcOffset))
      return Status::Corrupt("XFS superblock (sector 0): CRC mismatch (sb_crc)");
    sb.compat = load_be32(p + 208);
    sb.ro_compat = load_be32(p + 212);
    sb.incompat = load_be32(p + 216);
    sb.log_incompat = load_be32(p + 220);
    std::copy(p + 248, p + 264, sb.meta_uuid);
    if (sb.incompat & ~kIncompatKnown)
      return bad("sb_features_incompat", "unknown features " + hex(sb.incompat & ~kIncompatKnown));
  }
  return sb;
}

}  // namespace vdkit::guestfs::xfs
