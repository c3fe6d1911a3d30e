// Errors across the libext2fs boundary: errcode_t to errno and Status, and back for the io_manager's callbacks.
#pragma once

#include <ext2fs/ext2fs.h>

#include <string>

#include "blockcore/base/status.h"
#include "blockcore/layers/undo_device.h"

namespace vdkit {

// Maps a libext2fs error code to the errno a caller should see (ENOSPC for a
// full file system, EROFS, ENOENT, ENOTDIR, EEXIST, ENODATA, EIO, ...).
int ext2_errno(errcode_t err);
// A Status carrying ext2_errno(err) and "what: <libext2fs message>".
Status ext2_status(errcode_t err, const std::string& what);

namespace ext2 {

// What an io_manager callback returns for a failed BlockDevice call.
errcode_t status_to_errcode(const Status& st);

// libext2fs reports some write failures in its own words ("Can't write a block bitmap"); adds the device's error,
// which names the file, offset and errno.
Status with_device_error(const Status& st, const UndoDevice& undo);

}  // namespace ext2
}  // namespace vdkit
