// Errors across the libext2fs boundary: errcode_t to errno and Status, and the device's own message kept.
#include "guestfs/ext2/errors.h"

namespace vdkit {

int ext2_errno(errcode_t err) {
  if (err == 0) return 0;
  if (err > 0 && err < 256) return static_cast<int>(err);  // a plain errno passed through libext2fs
  switch (err) {
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_DIR_NO_SPACE:
    case EXT2_ET_DIR_NO_SPACE_FOR_CSUM:
    case EXT2_ET_EA_NO_SPACE:
    case EXT2_ET_INLINE_DATA_NO_SPACE: return ENOSPC;
    case EXT2_ET_RO_FILSYS:
    case EXT2_ET_FILE_RO: return EROFS;
    case EXT2_ET_FILE_NOT_FOUND: return ENOENT;
    case EXT2_ET_NO_DIRECTORY: return ENOTDIR;
    case EXT2_ET_DIR_EXISTS: return EEXIST;
    case EXT2_ET_FILE_TOO_BIG: return EFBIG;
    case EXT2_ET_EA_KEY_NOT_FOUND: return ENODATA;
    case EXT2_ET_EA_BAD_NAME_LEN: return ERANGE;
    case EXT2_ET_EA_BAD_VALUE_SIZE: return E2BIG;
    case EXT2_ET_MISSING_EA_FEATURE: return ENOTSUP;
    case EXT2_ET_NO_MEMORY: return ENOMEM;
    case EXT2_ET_SYMLINK_LOOP: return ELOOP;
    case EXT2_ET_UNIMPLEMENTED: return ENOTSUP;
    default: return EIO;
  }
}

Status ext2_status(errcode_t err, const std::string& what) {
  if (err == 0) return Status::Ok();
  return Status::Error(ext2_errno(err), what + ": " + error_message(err));
}

Status ext2_status(ext2::DeviceErrors* dev, errcode_t err, const std::string& what) {
  Status st = ext2_status(err, what);
  if (st.ok() || !dev || (st.code() != EIO && st.code() != EROFS)) return st;
  std::string device = dev->take();
  if (device.empty()) return st;
  return Status::Error(st.code(), st.message() + " (device: " + device + ")");
}

namespace ext2 {

void DeviceErrors::record(std::string message) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  message_ = std::move(message);  // a move: cannot throw
}

std::string DeviceErrors::take() {
  std::lock_guard<std::mutex> g(mu_);
  std::string m = std::move(message_);
  message_.clear();
  return m;
}

errcode_t status_to_errcode(const Status& st) { return st.code() == EROFS ? EXT2_ET_RO_FILSYS : EIO; }

Status with_device_error(const Status& st, const UndoDevice& undo) {
  Status dev = undo.first_error();
  if (st.ok() || dev.ok() || st.message().find(dev.message()) != std::string::npos) return st;
  return Status::Error(dev.code(), st.message() + " (" + dev.message() + ")");
}

}  // namespace ext2
}  // namespace vdkit
