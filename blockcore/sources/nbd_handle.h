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

// A further connection to a server that allows multi-conn, given `ms` for its
// handshake: a server that caps its connections may leave one past the cap
// waiting unanswered in its listen queue (qemu-nbd -e N does) rather than
// refuse it. ETIMEDOUT then; the caller goes on with the connections it has.
Result<NbdHandlePtr> nbd_connect_more(const std::string& uri, bool block_status, int ms);
inline constexpr int kMoreConnectionMs = 2000;

}  // namespace vdkit
