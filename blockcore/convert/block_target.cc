// Block device targets: opened O_EXCL, data through TargetFile (O_DIRECT where taken), zeros by hole punch or
// BLKZEROOUT.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "blockcore/base/checked.h"
#include "blockcore/base/units.h"
#include "blockcore/convert/output_target.h"
#include "blockcore/convert/raw_writer.h"

namespace vdkit {

namespace {

// One zeroing call covers at most this much, so a signal is seen between calls
// on a huge device (BLKZEROOUT that falls back to writing zeros is slow).
constexpr uint64_t kMaxZeroCall = 1ull << 30;
// Zeros that must be written as bytes (unaligned edges, a device taking
// neither punch nor BLKZEROOUT) go from one buffer of this size.
constexpr uint64_t kZeroBuffer = 1u << 20;

const ChunkBuffer& zero_buffer() {
  static const ChunkBuffer zeros(kZeroBuffer, 0);
  return zeros;
}

class BlockDeviceTarget final : public OutputTarget {
 public:
  BlockDeviceTarget(std::string path, std::unique_ptr<TargetFile> file, uint64_t size, uint32_t sector)
      : path_(std::move(path)), file_(std::move(file)), size_(size), sector_(sector) {}

  const std::string& name() const override { return path_; }
  uint64_t size() const override { return size_; }

  Status write(std::span<const IoRequest> reqs) override {
    for (const IoRequest& r : reqs)
      if (!range_within(r.offset, r.len, size_))
        return Status::Error(ENOSPC, "'" + path_ + "': a write of " + std::to_string(r.len) + " bytes at offset " +
                                         std::to_string(r.offset) + " would pass the end of the device");
    return file_->write(reqs);
  }

  Status zero(uint64_t offset, uint64_t length) override {
    if (length == 0) return Status::Ok();
    if (!range_within(offset, length, size_))
      return Status::Error(ENOSPC, "'" + path_ + "': zeroing past the end of the device");
    const uint64_t end = offset + length;
    const uint64_t a = div_round_up(offset, sector_) * sector_;
    const uint64_t b = end / sector_ * sector_;
    if (a >= b) return write_zeros(offset, length);
    VDKIT_RETURN_IF_ERROR(write_zeros(offset, a - offset));
    VDKIT_RETURN_IF_ERROR(write_zeros(b, end - b));
    for (uint64_t pos = a; pos < b;) {
      uint64_t n = std::min(kMaxZeroCall, b - pos);
      VDKIT_RETURN_IF_ERROR(zero_aligned(pos, n));
      pos += n;
    }
    return Status::Ok();
  }

  Status flush() override { return file_->file().Sync(); }

 private:
  Status zero_aligned(uint64_t pos, uint64_t n) {
    const int fd = file_->file().fd();
    if (!punch_refused_) {
      if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(pos), static_cast<off_t>(n)) ==
          0)
        return Status::Ok();
      // The device cannot guarantee zeros without writing them (no unmapping
      // write-zeroes): BLKZEROOUT from now on.
      if (errno != EOPNOTSUPP && errno != ENOTSUP && errno != EINVAL && errno != ENODEV)
        return Status::FromErrno(errno, "'" + path_ + "': punching a hole at offset " + std::to_string(pos));
      punch_refused_ = true;
    }
    if (!zeroout_refused_) {
      uint64_t range[2] = {pos, n};
      if (::ioctl(fd, BLKZEROOUT, range) == 0) return Status::Ok();
      if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EINVAL)
        return Status::FromErrno(errno, "'" + path_ + "': BLKZEROOUT at offset " + std::to_string(pos));
      zeroout_refused_ = true;
    }
    return write_zeros(pos, n);
  }

  Status write_zeros(uint64_t pos, uint64_t n) {
    const ChunkBuffer& z = zero_buffer();
    while (n > 0) {
      uint64_t k = std::min<uint64_t>(n, z.size());
      IoRequest r{-1, const_cast<uint8_t*>(z.data()), k, pos, true, 0};
      VDKIT_RETURN_IF_ERROR(file_->write(std::span<const IoRequest>(&r, 1)));
      pos += k;
      n -= k;
    }
    return Status::Ok();
  }

  std::string path_;
  std::unique_ptr<TargetFile> file_;
  uint64_t size_;
  uint32_t sector_;
  bool punch_refused_ = false;
  bool zeroout_refused_ = false;
};

}  // namespace

bool is_block_device_path(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

Result<std::unique_ptr<OutputTarget>> open_block_device_target(const std::string& path, const TargetIo& io) {
  // O_EXCL on a block device: the kernel refuses it while anything holds the
  // device exclusively (a mount, an LVM/RAID/dm member, another O_EXCL opener).
  int fd = ::open(path.c_str(), O_RDWR | O_EXCL | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EBUSY)
      return Status::Error(EBUSY, "the block device '" + path +
                                      "' is in use (mounted, part of a RAID, LVM or device-mapper device, or open "
                                      "exclusively by another program); vdkit writes only to a device nothing uses");
    return Status::FromErrno(err, "opening the block device '" + path + "' for writing");
  }
  uint64_t size = 0;
  int sector = 0;
  if (::ioctl(fd, BLKGETSIZE64, &size) != 0 || ::ioctl(fd, BLKSSZGET, &sector) != 0 || sector <= 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno(err, "reading the size of the block device '" + path + "'");
  }
  auto file = TargetFile::Open(fd, path, io);
  return std::unique_ptr<OutputTarget>(
      new BlockDeviceTarget(path, std::move(file), size, static_cast<uint32_t>(sector)));
}

}  // namespace vdkit
