// Targets written in place (block devices, NBD exports): no temporary name to rename, so zeros are written by the sink.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "blockcore/base/status.h"
#include "blockcore/convert/convert.h"
#include "blockcore/io/io_engine.h"

namespace vdkit {

// A target of fixed size that already holds bytes (old data of a device or
// export): unlike a new file, every range must be written or zeroed.
// Calls come from one thread.
class OutputTarget {
 public:
  virtual ~OutputTarget() = default;
  // For messages: the device path or the URI.
  virtual const std::string& name() const = 0;
  virtual uint64_t size() const = 0;
  // Writes every request (IoRequest::fd is ignored). Buffers belong to the
  // caller and may be reused once this returns; a target that queues the
  // bytes copies them. Aligned requests (buffer, offset, length on 4 KiB) are
  // the fast path; others are still written.
  virtual Status write(std::span<const IoRequest> reqs) = 0;
  // Makes [offset, offset+length) read as zeros, without writing zero bytes
  // where the target can (hole punch, BLKZEROOUT, NBD zero requests).
  virtual Status zero(uint64_t offset, uint64_t length) = 0;
  // Every write and zero returned so far is on stable storage when this
  // returns Ok; the first error of an earlier queued request comes back here.
  virtual Status flush() = 0;
};

// True when `path` names a block device (after following links).
bool is_block_device_path(const std::string& path);

// Opens a block device for writing with O_EXCL, which the kernel refuses
// (EBUSY) while the device is mounted, a member of a RAID/LVM/dm device, or
// open exclusively by another program. Aligned writes go down with O_DIRECT
// when the device takes them (io.direct). Zero ranges: fallocate(PUNCH_HOLE |
// KEEP_SIZE) first, which keeps thin storage thin (a loop device over a
// sparse file punches the file), then BLKZEROOUT where that is refused; never
// BLKDISCARD, after which the contents are not guaranteed.
Result<std::unique_ptr<OutputTarget>> open_block_device_target(const std::string& path, const TargetIo& io);

// Connects to a writable NBD export (nbd://, nbd+unix:// ...) through libnbd:
// up to `connections` connections when the server allows multi-conn (one
// otherwise), writes queued to a worker per connection, zero requests (with
// NBD_CMD_FLAG_FAST_ZERO where offered) for zero ranges, NBD_CMD_FLAG_FUA-free
// writes made durable by a flush on every connection.
Result<std::unique_ptr<OutputTarget>> open_nbd_target(const std::string& uri, unsigned connections = 4);

}  // namespace vdkit
