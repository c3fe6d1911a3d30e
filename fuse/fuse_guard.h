// The one guard for FUSE callbacks: no exception reaches libfuse's C frames, and what was caught is logged first.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse3/fuse_lowlevel.h>

#include <cstdio>

#include "blockcore/base/caught_exception.h"

namespace vdkit {

// Runs a request handler's body, which replies as its last step. If the body throws, the operation and the
// exception's message go to stderr (which the mount daemon keeps in its --log), and the request gets ENOMEM for an
// allocation failure, EIO for anything else.
template <typename F>
void guarded(fuse_req_t req, const char* op, F&& body) noexcept {
  try {
    body();
  } catch (...) {
    CaughtException e = describe_caught_exception();
    std::fprintf(stderr, "vdkit mount: %s: %s\n", op, e.message);
    fuse_reply_err(req, e.code);
  }
}

// The same for the callbacks that send no reply (destroy).
template <typename F>
void guarded(const char* op, F&& body) noexcept {
  try {
    body();
  } catch (...) {
    std::fprintf(stderr, "vdkit mount: %s: %s\n", op, describe_caught_exception().message);
  }
}

}  // namespace vdkit
