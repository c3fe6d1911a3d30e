// Ext2Volume file data: reads (long device runs for extent-mapped files), writes refusing a half-mapped ENOSPC.
#include <algorithm>
#include <cstring>

#include "blockcore/base/checked.h"
#include "guestfs/ext2/errors.h"
#include "guestfs/ext2/ext2_volume.h"

namespace vdkit {

Result<size_t> Ext2Volume::ReadLocked(std::unique_lock<std::mutex>& lock, ext2_ino_t ino, uint64_t offset,
                                      std::span<uint8_t> buf) {
  ext2_inode_large in;
  VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
  uint64_t size = EXT2_I_SIZE(&in);
  if (offset >= size || buf.empty()) return size_t{0};
  size_t len = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - offset));
  const uint64_t bs = fs_->blocksize;
  constexpr size_t kDirectReadMin = 64 * 1024;
  bool extent_mapped = (in.i_flags & EXT4_EXTENTS_FL) && !(in.i_flags & EXT4_INLINE_DATA_FL);
  if (extent_mapped && len >= kDirectReadMin && lock.owns_lock()) {
    // Map the range to device runs with the lock held, then read the device
    // without it so other requests go on while big reads stream.
    struct Run {
      uint64_t file_off, dev_off, len;  // dev_off == UINT64_MAX: reads as zeros
    };
    std::vector<Run> runs;
    ext2_extent_handle_t h;
    errcode_t err = ext2fs_extent_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&in), &h);
    if (err) return ext2_status(fs_, err, "reading the extent tree of inode " + std::to_string(ino));
    const uint64_t fs_blocks = ext2fs_blocks_count(fs_->super);
    uint64_t pos = offset, end = offset + len;
    while (pos < end) {
      blk64_t lblk = pos / bs;
      uint64_t in_block = pos % bs;
      struct ext2fs_extent ex;
      err = ext2fs_extent_goto(h, lblk);
      if (!err) err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &ex);
      if (err == 0 && ex.e_lblk <= lblk && lblk < ex.e_lblk + ex.e_len) {
        uint64_t blocks_left = ex.e_lblk + ex.e_len - lblk;
        uint64_t n = std::min<uint64_t>(end - pos, blocks_left * bs - in_block);
        uint64_t pblk = ex.e_pblk + (lblk - ex.e_lblk);
        if ((ex.e_flags & EXT2_EXTENT_FLAGS_UNINIT)) {
          runs.push_back({pos - offset, UINT64_MAX, n});
        } else {
          if (pblk >= fs_blocks || blocks_left > fs_blocks - pblk) {
            ext2fs_extent_free(h);
            return Status::Error(EIO, "inode " + std::to_string(ino) + ": extent at logical block " +
                                          std::to_string(ex.e_lblk) + " points past the end of the file system");
          }
          uint64_t dev_off = pblk * bs + in_block;
          if (!runs.empty() && runs.back().dev_off != UINT64_MAX &&
              runs.back().dev_off + runs.back().len == dev_off)
            runs.back().len += n;
          else
            runs.push_back({pos - offset, dev_off, n});
        }
        pos += n;
      } else if (err == 0 || err == EXT2_ET_EXTENT_NOT_FOUND) {
        uint64_t n = std::min<uint64_t>(end - pos, bs - in_block);  // a hole block
        runs.push_back({pos - offset, UINT64_MAX, n});
        pos += n;
      } else {
        ext2fs_extent_free(h);
        return ext2_status(fs_, err, "mapping block " + std::to_string(lblk) + " of inode " + std::to_string(ino));
      }
    }
    ext2fs_extent_free(h);
    // Read-only volumes drop the lock for the device reads. A writable one
    // keeps it: a concurrent truncate could hand these blocks to another file.
    if (!writable_) lock.unlock();
    Status st;
    for (const Run& r : runs) {
      auto dst = buf.subspan(r.file_off, r.len);
      if (r.dev_off == UINT64_MAX) std::memset(dst.data(), 0, dst.size());
      else if (st = dev_->read(r.dev_off, dst); !st.ok()) break;
    }
    if (!lock.owns_lock()) lock.lock();
    if (!st.ok()) return Status::Error(EIO, "reading inode " + std::to_string(ino) + ": " + st.message());
    return len;
  }
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, reinterpret_cast<ext2_inode*>(&in), 0, &f);
  if (err) return ext2_status(fs_, err, "opening inode " + std::to_string(ino));
  err = ext2fs_file_llseek(f, offset, EXT2_SEEK_SET, nullptr);
  size_t done = 0;
  while (!err && done < len) {
    unsigned int got = 0;
    unsigned int want = static_cast<unsigned int>(std::min<size_t>(len - done, 1u << 30));
    err = ext2fs_file_read(f, buf.data() + done, want, &got);
    if (got == 0) break;
    done += got;
  }
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(fs_, err, "reading inode " + std::to_string(ino));
  if (cerr) return ext2_status(fs_, cerr, "closing inode " + std::to_string(ino));
  return done;
}

Result<size_t> Ext2Volume::WriteLocked(ext2_ino_t ino, uint64_t offset, std::span<const uint8_t> buf) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  if (buf.empty()) return size_t{0};
  auto end = checked_add(offset, buf.size());
  if (!end || *end > (1ull << 44)) return Status::Error(EFBIG, "write beyond the largest ext4 file size");
  {
    // libext2fs leaves a half-mapped inode behind when it runs out of blocks in
    // the middle of a write, so refuse up front when the space cannot be there.
    ext2_inode_large in;
    VDKIT_RETURN_IF_ERROR(ReadInodeLocked(ino, in));
    const uint64_t bs = fs_->blocksize;
    uint64_t size = EXT2_I_SIZE(&in);
    uint64_t allocated = ext2fs_get_stat_i_blocks(fs_, reinterpret_cast<ext2_inode*>(&in)) * 512;
    bool overwrite_of_dense_data = *end <= size && allocated >= size;
    uint64_t need = overwrite_of_dense_data ? 0 : div_round_up(buf.size(), bs) + 1;
    need += need / 256 + 4;  // extent tree and index blocks
    if (ext2fs_free_blocks_count(fs_->super) < need)
      return Status::Error(ENOSPC, "no space left on the guest file system");
  }
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, nullptr, EXT2_FILE_WRITE, &f);
  if (err) return ext2_status(fs_, err, "opening inode " + std::to_string(ino) + " for writing");
  err = ext2fs_file_llseek(f, offset, EXT2_SEEK_SET, nullptr);
  size_t done = 0;
  while (!err && done < buf.size()) {
    unsigned int wrote = 0;
    unsigned int want = static_cast<unsigned int>(std::min<size_t>(buf.size() - done, 1u << 30));
    err = ext2fs_file_write(f, buf.data() + done, want, &wrote);
    done += wrote;
    if (wrote == 0) break;
  }
  // ext2fs_file_write does not grow i_size past the end; do it here.
  if (!err) {
    __u64 cur = 0;
    ext2fs_file_get_lsize(f, &cur);
    if (offset + done > cur) err = ext2fs_file_set_size2(f, offset + done);
  }
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(fs_, err, "writing inode " + std::to_string(ino));
  if (cerr) return ext2_status(fs_, cerr, "writing inode " + std::to_string(ino));
  VDKIT_RETURN_IF_ERROR(TouchLocked(ino, true, true));
  return done;
}

Status Ext2Volume::TruncateLocked(ext2_ino_t ino, uint64_t size) {
  VDKIT_RETURN_IF_ERROR(CheckWritable());
  ext2_file_t f;
  errcode_t err = ext2fs_file_open2(fs_, ino, nullptr, EXT2_FILE_WRITE, &f);
  if (err) return ext2_status(fs_, err, "opening inode " + std::to_string(ino) + " for truncation");
  err = ext2fs_file_set_size2(f, size);
  errcode_t cerr = ext2fs_file_close(f);
  if (err) return ext2_status(fs_, err, "truncating inode " + std::to_string(ino));
  if (cerr) return ext2_status(fs_, cerr, "truncating inode " + std::to_string(ino));
  return TouchLocked(ino, true, true);
}

}  // namespace vdkit
