// libnbd connections shared by the NBD source and the NBD convert target: one way to connect, one error text.
#pragma once

#include <memory>
#include <string>

#include "blockcore/base/status.h"

struct nbd_handle;

namespace vdkit {

// Shuts the connection down cleanly (NBD_CMD_DISC) and frees the handle.
struct NbdHandleCloser {
  void operator()(nbd_handle* h) const;
};
using NbdHandlePtr = std::unique_ptr<nbd_handle, NbdHandleCloser>;

// libnbd's message for the last failed call on this thread.
std::string nbd_error_text();

// Connects to uri (any scheme nbd_connect_uri takes); block_status asks for
// the "base:allocation" meta context first.
Result<NbdHandlePtr> nbd_connect(const std::string& uri, bool block_status);

}  // namespace vdkit
