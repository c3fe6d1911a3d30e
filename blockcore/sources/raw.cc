// The raw driver: the file is the disk; extents come from SEEK_DATA/SEEK_HOLE.
#include <vector>

#include "blockcore/sources/image.h"

namespace vdkit {

namespace {

class RawDevice final : public BlockDevice {
 public:
  RawDevice(std::shared_ptr<File> file, uint64_t size) : file_(std::move(file)), size_(size) {
    info_.filename = file_->path();
    info_.format = "raw";
    info_.virtual_size = size_;
    info_.actual_size = file_->AllocatedBytes();
  }

  uint64_t size() const override { return size_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return file_->ReadExact(offset, buf.data(), buf.size());
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    VDKIT_RETURN_IF_ERROR(file_->DataRuns(offset, length, runs));
    uint64_t pos = offset;
    for (auto [s, e] : runs) {
      if (s > pos) append_extent(out, {pos, s - pos, ExtentType::kHole});
      append_extent(out, {s, e - s, ExtentType::kData});
      pos = e;
    }
    if (pos < offset + length) append_extent(out, {pos, offset + length - pos, ExtentType::kHole});
    return Status::Ok();
  }

  DeviceCaps caps() const override {
    DeviceCaps c;
    c.writable = file_->writable();
    c.can_zero = c.can_trim = c.can_flush = c.writable;
    return c;
  }

  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    if (!file_->writable()) return BlockDevice::write(offset, buf);
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return file_->WriteExact(offset, buf.data(), buf.size());
  }

  Status zero(uint64_t offset, uint64_t length) override {
    if (!file_->writable()) return BlockDevice::zero(offset, length);
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    if (file_->PunchHole(offset, length).ok()) return Status::Ok();
    std::vector<uint8_t> zeros(std::min<uint64_t>(length, 1 << 20), 0);
    for (uint64_t pos = offset; pos < offset + length;) {
      size_t n = std::min<uint64_t>(zeros.size(), offset + length - pos);
      VDKIT_RETURN_IF_ERROR(file_->WriteExact(pos, zeros.data(), n));
      pos += n;
    }
    return Status::Ok();
  }

  Status trim(uint64_t offset, uint64_t length) override { return zero(offset, length); }

  Status flush() override { return file_->writable() ? file_->Sync() : Status::Ok(); }

  const ImageInfo& info() const override { return info_; }

 private:
  std::shared_ptr<File> file_;
  uint64_t size_;
  ImageInfo info_;
};

}  // namespace

Result<BlockDevicePtr> open_raw(std::shared_ptr<File> file, const OpenContext&) {
  VDKIT_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  return BlockDevicePtr(std::make_unique<RawDevice>(std::move(file), size));
}

}  // namespace vdkit
