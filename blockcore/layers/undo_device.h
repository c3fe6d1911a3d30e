// UndoDevice: a BlockDevice wrapper that can undo a group of writes. Between begin() and commit() it keeps the
// bytes each write, zero or trim is about to replace; rollback() puts them back, newest first, so the device reads
// exactly as it did at begin(). Editors without a journal (libext2fs on a guest disk) use it to make a multi-block
// change all-or-nothing when a write fails part way: every metadata block they touched returns to its old state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "blockcore/base/block_device.h"

namespace vdkit {

class UndoDevice final : public BlockDevice {
 public:
  // Before-images held by one transaction are bounded; a write past the bound fails with EFBIG (and writes
  // nothing), so the caller rolls back instead of growing without limit.
  static constexpr uint64_t kDefaultLimit = 256ull << 20;

  explicit UndoDevice(std::shared_ptr<BlockDevice> base, uint64_t limit = kDefaultLimit)
      : base_(std::move(base)), limit_(limit) {}

  // Starts recording. A transaction already open is committed first.
  void begin();
  // Forgets the before-images: the writes since begin() stay.
  void commit();
  // Writes the before-images back (newest first), then flushes. The transaction ends either way; on failure the
  // device holds a mix of old and new bytes and the error says so.
  Status rollback();
  bool recording() const;
  uint64_t held_bytes() const;
  // The first write, zero or trim that failed since begin(), even if the caller went on as if it had not (libext2fs
  // drops some inode-table write errors): a transaction with a failure must be rolled back, not committed.
  Status first_error() const;

  uint64_t size() const override { return base_->size(); }
  Status read(uint64_t offset, std::span<uint8_t> buf) override { return base_->read(offset, buf); }
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    return base_->extents(offset, length, out);
  }
  DeviceCaps caps() const override { return base_->caps(); }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status zero(uint64_t offset, uint64_t length) override;
  Status trim(uint64_t offset, uint64_t length) override;
  Status flush() override { return base_->flush(); }
  Status prefetch(uint64_t offset, uint64_t length) override { return base_->prefetch(offset, length); }
  const ImageInfo& info() const override { return base_->info(); }

 private:
  struct BeforeImage {
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };
  // Saves [offset, offset+length) before it changes, when recording.
  Status save(uint64_t offset, uint64_t length);
  Status note(Status st);  // remembers the first failure while recording

  std::shared_ptr<BlockDevice> base_;
  const uint64_t limit_;
  mutable std::mutex mu_;
  bool recording_ = false;
  uint64_t held_ = 0;
  Status first_error_;
  std::vector<BeforeImage> log_;
};

}  // namespace vdkit
