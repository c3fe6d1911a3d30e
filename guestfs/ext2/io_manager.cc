// A libext2fs io_manager over a vdkit BlockDevice: libext2fs opens "vdkit-dev:<n>" names registered here.
#include "guestfs/ext2/io_manager.h"

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>

#include "blockcore/base/checked.h"
#include "guestfs/ext2/errors.h"

namespace vdkit::ext2 {
namespace {

std::mutex g_registry_mu;
std::map<std::string, std::shared_ptr<BlockDevice>>& registry() {
  static std::map<std::string, std::shared_ptr<BlockDevice>> r;
  return r;
}

struct ChannelData {
  std::shared_ptr<BlockDevice> dev;
  bool writable = false;
};

BlockDevice* dev_of(io_channel ch) { return static_cast<ChannelData*>(ch->private_data)->dev.get(); }

// Byte range of `count` blocks at `block` (count < 0 means -count bytes, as libext2fs defines it).
bool byte_range(io_channel ch, unsigned long long block, int count, uint64_t& off, uint64_t& len) {
  if (count < 0) len = static_cast<uint64_t>(-static_cast<int64_t>(count));
  else len = static_cast<uint64_t>(count) * static_cast<uint64_t>(ch->block_size);
  auto o = checked_mul(block, static_cast<uint64_t>(ch->block_size));
  if (!o) return false;
  off = *o;
  return true;
}

errcode_t vd_open(const char* name, int flags, io_channel* channel);

errcode_t vd_close(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  delete static_cast<ChannelData*>(ch->private_data);
  ext2fs_free_mem(&ch->name);
  ext2fs_free_mem(&ch);
  return 0;
}

errcode_t vd_set_blksize(io_channel ch, int blksize) {
  if (blksize <= 0 || blksize > (1 << 16)) return EXT2_ET_INVALID_ARGUMENT;
  ch->block_size = blksize;
  return 0;
}

errcode_t vd_read_blk64(io_channel ch, unsigned long long block, int count, void* data) {
  uint64_t off, len;
  BlockDevice* dev = dev_of(ch);
  if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) {
    // Reading past the end of the device: the file system claims blocks the disk does not have.
    return EXT2_ET_SHORT_READ;
  }
  Status st = dev->read(off, std::span<uint8_t>(static_cast<uint8_t*>(data), len));
  if (!st.ok()) return status_to_errcode(st);
  return 0;
}

errcode_t vd_read_blk(io_channel ch, unsigned long block, int count, void* data) {
  return vd_read_blk64(ch, block, count, data);
}

errcode_t vd_write_blk64(io_channel ch, unsigned long long block, int count, const void* data) {
  uint64_t off, len;
  BlockDevice* dev = dev_of(ch);
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return EXT2_ET_RO_FILSYS;
  if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) return EXT2_ET_SHORT_WRITE;
  Status st = dev->write(off, std::span<const uint8_t>(static_cast<const uint8_t*>(data), len));
  return st.ok() ? 0 : status_to_errcode(st);
}

errcode_t vd_write_blk(io_channel ch, unsigned long block, int count, const void* data) {
  return vd_write_blk64(ch, block, count, data);
}

errcode_t vd_write_byte(io_channel ch, unsigned long offset, int count, const void* data) {
  BlockDevice* dev = dev_of(ch);
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return EXT2_ET_RO_FILSYS;
  if (count < 0 || !range_within(offset, static_cast<uint64_t>(count), dev->size())) return EXT2_ET_SHORT_WRITE;
  Status st = dev->write(offset, std::span<const uint8_t>(static_cast<const uint8_t*>(data), count));
  return st.ok() ? 0 : status_to_errcode(st);
}

errcode_t vd_flush(io_channel ch) {
  if (!static_cast<ChannelData*>(ch->private_data)->writable) return 0;
  Status st = dev_of(ch)->flush();
  return st.ok() ? 0 : EIO;
}

errcode_t vd_set_option(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

errcode_t vd_discard(io_channel ch, unsigned long long block, unsigned long long count) {
  BlockDevice* dev = dev_of(ch);
  if (!dev->caps().can_trim) return EXT2_ET_UNIMPLEMENTED;
  auto off = checked_mul(block, ch->block_size);
  auto len = checked_mul(count, ch->block_size);
  if (!off || !len || !range_within(*off, *len, dev->size())) return EXT2_ET_INVALID_ARGUMENT;
  return dev->trim(*off, *len).ok() ? 0 : EIO;
}

errcode_t vd_zeroout(io_channel ch, unsigned long long block, unsigned long long count) {
  BlockDevice* dev = dev_of(ch);
  if (!dev->caps().can_zero) return EXT2_ET_UNIMPLEMENTED;
  auto off = checked_mul(block, ch->block_size);
  auto len = checked_mul(count, ch->block_size);
  if (!off || !len || !range_within(*off, *len, dev->size())) return EXT2_ET_INVALID_ARGUMENT;
  return dev->zero(*off, *len).ok() ? 0 : EIO;
}

errcode_t vd_cache_readahead(io_channel, unsigned long long, unsigned long long) { return 0; }

struct struct_io_manager g_vdkit_io_manager = [] {
  struct struct_io_manager m;
  std::memset(&m, 0, sizeof m);
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "vdkit BlockDevice I/O manager";
  m.open = vd_open;
  m.close = vd_close;
  m.set_blksize = vd_set_blksize;
  m.read_blk = vd_read_blk;
  m.write_blk = vd_write_blk;
  m.flush = vd_flush;
  m.write_byte = vd_write_byte;
  m.set_option = vd_set_option;
  m.read_blk64 = vd_read_blk64;
  m.write_blk64 = vd_write_blk64;
  m.discard = vd_discard;
  m.cache_readahead = vd_cache_readahead;
  m.zeroout = vd_zeroout;
  return m;
}();

errcode_t vd_open(const char* name, int flags, io_channel* channel) {
  std::shared_ptr<BlockDevice> dev;
  {
    std::lock_guard<std::mutex> g(g_registry_mu);
    auto it = registry().find(name ? name : "");
    if (it == registry().end()) return EXT2_ET_BAD_DEVICE_NAME;
    dev = it->second;
  }
  if ((flags & IO_FLAG_RW) && !dev->caps().writable) return EXT2_ET_RO_FILSYS;
  io_channel ch = nullptr;
  errcode_t err = ext2fs_get_mem(sizeof(struct struct_io_channel), &ch);
  if (err) return err;
  std::memset(ch, 0, sizeof *ch);
  err = ext2fs_get_mem(std::strlen(name) + 1, &ch->name);
  if (err) {
    ext2fs_free_mem(&ch);
    return err;
  }
  std::strcpy(ch->name, name);
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = &g_vdkit_io_manager;
  ch->block_size = 1024;
  ch->refcount = 1;
  ch->private_data = new ChannelData{std::move(dev), (flags & IO_FLAG_RW) != 0};
  *channel = ch;
  return 0;
}

std::atomic<uint64_t> g_next_channel{1};

}  // namespace

io_manager block_device_io_manager() { return &g_vdkit_io_manager; }

std::string register_device(std::shared_ptr<BlockDevice> dev) {
  std::string name = "vdkit-dev:" + std::to_string(g_next_channel++);
  std::lock_guard<std::mutex> g(g_registry_mu);
  registry()[name] = std::move(dev);
  return name;
}

void unregister_device(const std::string& name) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  registry().erase(name);
}

}  // namespace vdkit::ext2
