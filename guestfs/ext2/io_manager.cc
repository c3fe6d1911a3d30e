// A libext2fs io_manager over a vdkit BlockDevice: libext2fs opens "vdkit-dev:<n>" names registered here.
//
// Every callback is a noexcept C entry point: nothing may unwind through libext2fs's frames. A failed BlockDevice
// call is recorded in the volume's DeviceErrors with what was asked (so the Status of the libext2fs call that
// failed names the offset); an exception is a bug, so it is also logged to stderr.
#include "guestfs/ext2/io_manager.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "blockcore/base/caught_exception.h"
#include "blockcore/base/checked.h"

namespace vdkit::ext2 {
namespace {

struct Registered {
  std::shared_ptr<BlockDevice> dev;
  std::shared_ptr<DeviceErrors> errors;
};

std::mutex g_registry_mu;
std::map<std::string, Registered>& registry() {
  static std::map<std::string, Registered> r;
  return r;
}

struct ChannelData {
  std::shared_ptr<BlockDevice> dev;
  std::shared_ptr<DeviceErrors> errors;
  bool writable = false;
};

ChannelData& data_of(io_channel ch) { return *static_cast<ChannelData*>(ch->private_data); }
BlockDevice* dev_of(io_channel ch) { return data_of(ch).dev.get(); }

// Records a failed device call ("reading 4096 bytes at offset 8192: <device message>") and maps it.
errcode_t failed(io_channel ch, const std::string& what, const Status& st) {
  data_of(ch).errors->record(what + ": " + st.message());
  return status_to_errcode(st);
}

// Runs a callback body; an exception becomes a logged and recorded EIO (EXT2_ET_NO_MEMORY for bad_alloc).
template <typename F>
errcode_t guarded(io_channel ch, const char* op, F&& body) noexcept {
  try {
    return body();
  } catch (...) {
    CaughtException e = describe_caught_exception();
    std::fprintf(stderr, "vdkit: ext2 io_manager %s: %s\n", op, e.message);
    if (ch && ch->private_data) {
      try {
        data_of(ch).errors->record(std::string(op) + ": " + e.message);
      } catch (...) {  // no memory for the message: the log line above has it
      }
    }
    return e.code == ENOMEM ? EXT2_ET_NO_MEMORY : EIO;
  }
}

std::string at(uint64_t off, uint64_t len) { return std::to_string(len) + " bytes at offset " + std::to_string(off); }

// Byte range of `count` blocks at `block` (count < 0 means -count bytes, as libext2fs defines it).
bool byte_range(io_channel ch, unsigned long long block, int count, uint64_t& off, uint64_t& len) {
  if (count < 0) len = static_cast<uint64_t>(-static_cast<int64_t>(count));
  else len = static_cast<uint64_t>(count) * static_cast<uint64_t>(ch->block_size);
  auto o = checked_mul(block, static_cast<uint64_t>(ch->block_size));
  if (!o) return false;
  off = *o;
  return true;
}

errcode_t vd_open(const char* name, int flags, io_channel* channel) noexcept;

errcode_t vd_close(io_channel ch) noexcept {
  return guarded(ch, "close", [&]() -> errcode_t {
    if (--ch->refcount > 0) return 0;
    delete static_cast<ChannelData*>(ch->private_data);
    ext2fs_free_mem(&ch->name);
    ext2fs_free_mem(&ch);
    return 0;
  });
}

errcode_t vd_set_blksize(io_channel ch, int blksize) noexcept {
  if (blksize <= 0 || blksize > (1 << 16)) return EXT2_ET_INVALID_ARGUMENT;
  ch->block_size = blksize;
  return 0;
}

errcode_t vd_read_blk64(io_channel ch, unsigned long long block, int count, void* data) noexcept {
  return guarded(ch, "read", [&]() -> errcode_t {
    uint64_t off, len;
    BlockDevice* dev = dev_of(ch);
    if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) {
      // Reading past the end of the device: the file system claims blocks the disk does not have.
      data_of(ch).errors->record("reading block " + std::to_string(block) + " (count " + std::to_string(count) +
                                 "): past the end of the " + std::to_string(dev->size()) + "-byte device");
      return EXT2_ET_SHORT_READ;
    }
    Status st = dev->read(off, std::span<uint8_t>(static_cast<uint8_t*>(data), len));
    if (!st.ok()) return failed(ch, "reading " + at(off, len), st);
    return 0;
  });
}

errcode_t vd_read_blk(io_channel ch, unsigned long block, int count, void* data) noexcept {
  return vd_read_blk64(ch, block, count, data);
}

errcode_t vd_write_blk64(io_channel ch, unsigned long long block, int count, const void* data) noexcept {
  return guarded(ch, "write", [&]() -> errcode_t {
    uint64_t off, len;
    BlockDevice* dev = dev_of(ch);
    if (!data_of(ch).writable) return EXT2_ET_RO_FILSYS;
    if (!byte_range(ch, block, count, off, len) || !range_within(off, len, dev->size())) return EXT2_ET_SHORT_WRITE;
    Status st = dev->write(off, std::span<const uint8_t>(static_cast<const uint8_t*>(data), len));
    return st.ok() ? 0 : failed(ch, "writing " + at(off, len), st);
  });
}

errcode_t vd_write_blk(io_channel ch, unsigned long block, int count, const void* data) noexcept {
  return vd_write_blk64(ch, block, count, data);
}

errcode_t vd_write_byte(io_channel ch, unsigned long offset, int count, const void* data) noexcept {
  return guarded(ch, "write_byte", [&]() -> errcode_t {
    BlockDevice* dev = dev_of(ch);
    if (!data_of(ch).writable) return EXT2_ET_RO_FILSYS;
    if (count < 0 || !range_within(offset, static_cast<uint64_t>(count), dev->size())) return EXT2_ET_SHORT_WRITE;
    Status st = dev->write(offset, std::span<const uint8_t>(static_cast<const uint8_t*>(data), count));
    return st.ok() ? 0 : failed(ch, "writing " + at(offset, static_cast<uint64_t>(count)), st);
  });
}

errcode_t vd_flush(io_channel ch) noexcept {
  return guarded(ch, "flush", [&]() -> errcode_t {
    if (!data_of(ch).writable) return 0;
    Status st = dev_of(ch)->flush();
    return st.ok() ? 0 : (failed(ch, "flushing", st), EIO);
  });
}

errcode_t vd_set_option(io_channel, const char*, const char*) noexcept { return EXT2_ET_INVALID_ARGUMENT; }

// discard and zeroout: a BlockDevice call on `count` blocks at `block`, when the device can do it at all.
template <typename Call>
errcode_t on_blocks(io_channel ch, const char* op, const char* doing, bool can, unsigned long long block,
                    unsigned long long count, Call&& call) noexcept {
  return guarded(ch, op, [&]() -> errcode_t {
    BlockDevice* dev = dev_of(ch);
    if (!can) return EXT2_ET_UNIMPLEMENTED;
    auto off = checked_mul(block, ch->block_size);
    auto len = checked_mul(count, ch->block_size);
    if (!off || !len || !range_within(*off, *len, dev->size())) return EXT2_ET_INVALID_ARGUMENT;
    Status st = call(*dev, *off, *len);
    return st.ok() ? 0 : (failed(ch, doing + (" " + at(*off, *len)), st), EIO);
  });
}

errcode_t vd_discard(io_channel ch, unsigned long long block, unsigned long long count) noexcept {
  return on_blocks(ch, "discard", "discarding", dev_of(ch)->caps().can_trim, block, count,
                   [](BlockDevice& d, uint64_t off, uint64_t len) { return d.trim(off, len); });
}

errcode_t vd_zeroout(io_channel ch, unsigned long long block, unsigned long long count) noexcept {
  return on_blocks(ch, "zeroout", "zeroing", dev_of(ch)->caps().can_zero, block, count,
                   [](BlockDevice& d, uint64_t off, uint64_t len) { return d.zero(off, len); });
}

errcode_t vd_cache_readahead(io_channel, unsigned long long, unsigned long long) noexcept { return 0; }

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

errcode_t vd_open(const char* name, int flags, io_channel* channel) noexcept {
  return guarded(nullptr, "open", [&]() -> errcode_t {
    Registered reg;
    {
      std::lock_guard<std::mutex> g(g_registry_mu);
      auto it = registry().find(name ? name : "");
      if (it == registry().end()) return EXT2_ET_BAD_DEVICE_NAME;
      reg = it->second;
    }
    if ((flags & IO_FLAG_RW) && !reg.dev->caps().writable) return EXT2_ET_RO_FILSYS;
    auto data = std::make_unique<ChannelData>(ChannelData{reg.dev, reg.errors, (flags & IO_FLAG_RW) != 0});
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
    ch->private_data = data.release();
    *channel = ch;
    return 0;
  });
}

std::atomic<uint64_t> g_next_channel{1};

}  // namespace

io_manager block_device_io_manager() { return &g_vdkit_io_manager; }

DeviceErrors* device_errors_of(ext2_filsys fs) {
  if (!fs || !fs->io || fs->io->manager != &g_vdkit_io_manager || !fs->io->private_data) return nullptr;
  return data_of(fs->io).errors.get();
}

std::string register_device(std::shared_ptr<BlockDevice> dev, std::shared_ptr<DeviceErrors> errors) {
  std::string name = "vdkit-dev:" + std::to_string(g_next_channel++);
  std::lock_guard<std::mutex> g(g_registry_mu);
  registry()[name] = Registered{std::move(dev), std::move(errors)};
  return name;
}

void unregister_device(const std::string& name) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  registry().erase(name);
}

Status open_registered(const std::string& name, int flags, DeviceErrors* errors, ext2_filsys* out) {
  *out = nullptr;
  ext2_filsys fs = nullptr;
  errcode_t err = ext2fs_open2(name.c_str(), nullptr, flags, 0, 0, block_device_io_manager(), &fs);
  if (err == EXT2_ET_BAD_MAGIC) return Status::Invalid("no ext2/3/4 superblock (magic 0xEF53 at byte 1080)");
  if (err) return ext2_status(errors, err, "opening the ext2/3/4 file system");
  ext2_super_block* sb = fs->super;
  const uint32_t first = sb->s_log_block_size == 0 && EXT2FS_CLUSTER_RATIO(fs) == 1 ? 1 : 0;
  if (sb->s_first_data_block != first || ext2fs_blocks_count(sb) <= first) {
    std::string msg = "the ext2/3/4 superblock is corrupt: first data block " + std::to_string(sb->s_first_data_block) +
                      " (a " + std::to_string(fs->blocksize) + "-byte block size needs " + std::to_string(first) +
                      "), " + std::to_string(ext2fs_blocks_count(sb)) + " blocks";
    ext2fs_free(fs);
    return Status::Corrupt(msg);
  }
  *out = fs;
  return Status::Ok();
}

}  // namespace vdkit::ext2
