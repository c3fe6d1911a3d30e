// A read-only BlockDevice over an NBD export (nbd://, nbd+unix:// URIs) through libnbd; block status gives extents.
#pragma once

#include <string>

#include "blockcore/base/block_device.h"

namespace vdkit {

// True for the URI schemes libnbd's nbd_connect_uri accepts.
bool is_nbd_uri(const std::string& s);

// Connects to the export named by uri. Reads are serialised over
// `connections` handles (each a separate NBD connection, used only when the
// server says it allows several, "multi-conn"). Extents come from the
// "base:allocation" meta context: hole+zero -> hole, zero -> zero, else data;
// a server without it reports everything as data.
Result<BlockDevicePtr> open_nbd_source(const std::string& uri, unsigned connections = 4);

}  // namespace vdkit
