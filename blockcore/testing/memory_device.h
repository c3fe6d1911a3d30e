// MemoryDevice: the one in-memory BlockDevice for tests, with declared extents and injectable read/write faults.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"

namespace vdkit {

// Thread-safe. Reads, writes and the hooks run under one lock, so a test can
// look at or change bytes() from a hook without racing the device.
class MemoryDevice final : public BlockDevice {
 public:
  explicit MemoryDevice(std::vector<uint8_t> bytes, bool writable = true, std::string format = "mem");
  explicit MemoryDevice(uint64_t size, bool writable = true) : MemoryDevice(std::vector<uint8_t>(size), writable) {}

  // Declares what extents() reports; must cover the device in order. Default: all data.
  void set_extents(std::vector<Extent> extents) { extents_ = std::move(extents); }

  uint64_t size() const override { return bytes_.size(); }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override;
  DeviceCaps caps() const override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status zero(uint64_t offset, uint64_t length) override;
  Status trim(uint64_t offset, uint64_t length) override { return zero(offset, length); }
  Status flush() override;
  const ImageInfo& info() const override { return info_; }

  // The bytes as they are now; not synchronised with concurrent I/O.
  std::vector<uint8_t>& bytes() { return bytes_; }

  // Faults. A read touching [bad_offset, bad_offset + bad_length) fails with EIO;
  // so does every read while fail_reads is set.
  uint64_t bad_offset = 0, bad_length = 0;
  bool fail_reads = false;
  // Write number fail_write (counting from 0), or every write when
  // all_writes_fail, lands only its first torn_keep bytes (kHalf: half of
  // them) and fails with EIO; with fail_reads_after_write_error that also sets
  // fail_reads, as a disk that went away would.
  static constexpr size_t kHalf = std::numeric_limits<size_t>::max();
  uint64_t fail_write = std::numeric_limits<uint64_t>::max();
  bool all_writes_fail = false;
  size_t torn_keep = kHalf;
  bool fail_reads_after_write_error = false;
  // Called after each successful read, under the device's lock.
  std::function<void(uint64_t offset, size_t length)> on_read;

  std::atomic<uint64_t> reads{0}, writes{0}, flushes{0};

 private:
  mutable std::mutex mu_;
  std::vector<uint8_t> bytes_;
  std::vector<Extent> extents_;
  bool writable_;
  ImageInfo info_;
};

}  // namespace vdkit
