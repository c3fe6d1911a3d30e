// UndoDevice: before-images of every change inside a transaction, written back newest first on rollback.
#include "blockcore/layers/undo_device.h"

#include "blockcore/base/checked.h"

namespace vdkit {

void UndoDevice::begin() {
  std::lock_guard<std::mutex> g(mu_);
  log_.clear();
  held_ = 0;
  first_error_ = Status::Ok();
  recording_ = true;
}

void UndoDevice::commit() {
  std::lock_guard<std::mutex> g(mu_);
  log_.clear();
  log_.shrink_to_fit();
  held_ = 0;
  recording_ = false;
}

bool UndoDevice::recording() const {
  std::lock_guard<std::mutex> g(mu_);
  return recording_;
}

Status UndoDevice::first_error() const {
  std::lock_guard<std::mutex> g(mu_);
  return first_error_;
}

Status UndoDevice::note(Status st) {
  if (recording_ && !st.ok() && first_error_.ok()) first_error_ = st;
  return st;
}

uint64_t UndoDevice::held_bytes() const {
  std::lock_guard<std::mutex> g(mu_);
  return held_;
}

Status UndoDevice::rollback() {
  std::lock_guard<std::mutex> g(mu_);
  recording_ = false;
  Status first;
  size_t failed = 0;
  // Newest first: where two writes overlapped, the older before-image lands last and wins.
  for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
    Status st = base_->write(it->offset, it->bytes);
    if (!st.ok()) {
      ++failed;
      if (first.ok()) first = st;
    }
  }
  size_t total = log_.size();
  log_.clear();
  log_.shrink_to_fit();
  held_ = 0;
  if (first.ok() && base_->caps().can_flush) first = base_->flush();
  else if (!first.ok())
    first = first.Context("undoing " + std::to_string(failed) + " of " + std::to_string(total) +
                          " changed ranges failed");
  return first;
}

Status UndoDevice::save(uint64_t offset, uint64_t length) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, length));
  auto total = checked_add(held_, length);
  if (!total || *total > limit_)
    return Status::Error(EFBIG, "the change is larger than the undo limit of " + std::to_string(limit_) +
                                    " bytes; nothing of it was written");
  BeforeImage b{offset, std::vector<uint8_t>(length)};
  VDKIT_RETURN_IF_ERROR(base_->read(offset, b.bytes).Context("saving the bytes a write replaces"));
  held_ = *total;
  log_.push_back(std::move(b));
  return Status::Ok();
}

Status UndoDevice::write(uint64_t offset, std::span<const uint8_t> buf) {
  std::lock_guard<std::mutex> g(mu_);
  if (recording_) VDKIT_RETURN_IF_ERROR(note(save(offset, buf.size())));
  return note(base_->write(offset, buf));
}

Status UndoDevice::zero(uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> g(mu_);
  if (recording_) VDKIT_RETURN_IF_ERROR(note(save(offset, length)));
  return note(base_->zero(offset, length));
}

Status UndoDevice::trim(uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> g(mu_);
  if (recording_) VDKIT_RETURN_IF_ERROR(note(save(offset, length)));
  return note(base_->trim(offset, length));
}

}  // namespace vdkit
