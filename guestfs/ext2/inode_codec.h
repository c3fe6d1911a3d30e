// Inode field codecs shared by the Ext2Volume files: timestamps, device numbers, file types, entry names.
#pragma once

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>

#include "blockcore/base/status.h"

namespace vdkit::ext2 {

// True when the large inode's extra part reaches the end of a field (offset of the byte after it).
bool has_extra(const ext2_filsys fs, const ext2_inode_large& in, size_t field_end);

#define VD_FIELD_END(f) (offsetof(ext2_inode_large, f) + sizeof(ext2_inode_large::f))

struct timespec decode_time(const ext2_filsys fs, const ext2_inode_large& in, uint32_t lo, uint32_t extra,
                            size_t extra_end);
void encode_time(const ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts, __u32& lo, __u32& extra,
                 size_t extra_end);
struct timespec now_ts();
void set_ctime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts);
void set_mtime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts);
void set_atime(ext2_filsys fs, ext2_inode_large& in, const struct timespec& ts);

uint64_t decode_rdev(const ext2_inode_large& in);
void encode_rdev(ext2_inode_large& in, uint64_t rdev);

int ext2_file_type(uint32_t mode);  // EXT2_FT_* of a mode
uint32_t dt_of_ft(int ft);          // DT_* of an EXT2_FT_*

// A single path component ext2 can store: not empty, ".", "..", no '/', at most 255 bytes.
Status check_name(const std::string& name);

}  // namespace vdkit::ext2
