// The one loop that fills a readdir or readdirplus reply from a listing taken at opendir, shared by the views.
#pragma once

#include <algorithm>
#include <string>

#include "fuse/fuse_guard.h"  // FUSE_USE_VERSION before libfuse's header

namespace vdkit {

// Answers a readdir/readdirplus of up to `size` bytes starting at entry `off` of a listing of `count` entries.
// add(i, buf, room) puts entry i into buf with fuse_add_direntry or fuse_add_direntry_plus (next offset i + 1) and
// returns what it needs; the reply stops at the first entry that does not fit, so the kernel asks again from there.
template <class Add>
void reply_dir_entries(fuse_req_t req, size_t size, off_t off, size_t count, Add add) {
  std::string buf(size, '\0');
  size_t used = 0;
  for (size_t i = static_cast<size_t>(std::max<off_t>(off, 0)); i < count; ++i) {
    size_t need = add(i, buf.data() + used, size - used);
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace vdkit
