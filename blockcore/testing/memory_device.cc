// The in-memory test device: bytes in a vector, extents as declared, faults where a test asks for them.
#include "blockcore/testing/memory_device.h"

#include <algorithm>
#include <cstring>

namespace vdkit {

MemoryDevice::MemoryDevice(std::vector<uint8_t> bytes, bool writable, std::string format)
    : bytes_(std::move(bytes)), writable_(writable) {
  info_.format = std::move(format);
  info_.virtual_size = bytes_.size();
}

Status MemoryDevice::read(uint64_t offset, std::span<uint8_t> buf) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
  std::lock_guard<std::mutex> g(mu_);
  if (fail_reads) return Status::IoError("memory device: injected read error at offset " + std::to_string(offset));
  if (bad_length && offset < bad_offset + bad_length && bad_offset < offset + buf.size())
    return Status::IoError("memory device: injected read error at offset " + std::to_string(bad_offset));
  std::memcpy(buf.data(), bytes_.data() + offset, buf.size());
  reads.fetch_add(1);
  if (on_read) on_read(offset, buf.size());
  return Status::Ok();
}

Status MemoryDevice::extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, length));
  if (extents_.empty()) {
    if (length) append_extent(out, {offset, length, ExtentType::kData});
    return Status::Ok();
  }
  for (const auto& e : extents_) {
    uint64_t s = std::max(offset, e.offset), t = std::min(offset + length, e.offset + e.length);
    if (s < t) append_extent(out, {s, t - s, e.type});
  }
  return Status::Ok();
}

DeviceCaps MemoryDevice::caps() const {
  DeviceCaps c;
  c.writable = c.can_flush = c.can_zero = c.can_trim = writable_;
  return c;
}

Status MemoryDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  if (!writable_) return BlockDevice::write(offset, buf);
  VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
  std::lock_guard<std::mutex> g(mu_);
  bool fail = writes.fetch_add(1) == fail_write || all_writes_fail;
  size_t n = buf.size();
  if (fail) n = torn_keep == kHalf ? n / 2 : std::min(n, torn_keep);
  std::memcpy(bytes_.data() + offset, buf.data(), n);
  if (!fail) return Status::Ok();
  if (fail_reads_after_write_error) fail_reads = true;
  return Status::IoError("memory device: injected write error at " + std::to_string(offset));
}

Status MemoryDevice::zero(uint64_t offset, uint64_t length) {
  std::vector<uint8_t> z(length);
  return write(offset, z);
}

Status MemoryDevice::flush() {
  if (!writable_) return BlockDevice::flush();
  flushes.fetch_add(1);
  return Status::Ok();
}

}  // namespace vdkit
