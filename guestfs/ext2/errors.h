// Errors across the libext2fs boundary: errcode_t to errno and Status, and the device's own message kept for both.
#pragma once

#include <ext2fs/ext2fs.h>

#include <mutex>
#include <string>

#include "blockcore/base/status.h"
#include "blockcore/layers/undo_device.h"

namespace vdkit {

namespace ext2 {

// libext2fs passes only an errcode_t up from the io_manager, so the device's own
// message (which names the offset, the file and the errno) would be lost: the
// callbacks record the last failure here, one record per volume, and
// ext2_status() puts it back into the Status of the libext2fs call that failed.
class DeviceErrors {
 public:
  void record(std::string message) noexcept;
  // The recorded message, once (the record is cleared); "" when there is none.
  std::string take();

 private:
  std::mutex mu_;
  std::string message_;
};

// DeviceErrors of a file system opened through block_device_io_manager(); nullptr for any other io_manager.
DeviceErrors* device_errors_of(ext2_filsys fs);

// What an io_manager callback returns for a failed BlockDevice call.
errcode_t status_to_errcode(const Status& st);

// libext2fs reports some write failures in its own words ("Can't write a block bitmap"); adds the device's error,
// which names the file, offset and errno.
Status with_device_error(const Status& st, const UndoDevice& undo);

}  // namespace ext2

// Maps a libext2fs error code to the errno a caller should see (ENOSPC for a
// full file system, EROFS, ENOENT, ENOTDIR, EEXIST, ENODATA, EIO, ...).
int ext2_errno(errcode_t err);
// A Status carrying ext2_errno(err) and "what: <libext2fs message>".
Status ext2_status(errcode_t err, const std::string& what);
// The same, and when err is an I/O error (EIO or EROFS to the caller), the device's message the io_manager recorded
// for it: "what: <libext2fs message> (device: <what the BlockDevice said>)". Other errors (ENOENT, ENOSPC, ...)
// leave the record alone, so a later I/O error still finds it.
Status ext2_status(ext2::DeviceErrors* dev, errcode_t err, const std::string& what);
inline Status ext2_status(ext2_filsys fs, errcode_t err, const std::string& what) {
  return ext2_status(ext2::device_errors_of(fs), err, what);
}

}  // namespace vdkit
