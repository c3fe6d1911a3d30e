// The raw target: a sparse file written only where data is, or an in-order stream (zeros written out) to a pipe.
#pragma once

#include <memory>
#include <string>

#include "blockcore/convert.h"

namespace vdkit {

// fd: the target, owned by the caller (the sink works on a duplicate).
// seekable: a regular file at offset 0, sized with ftruncate and written only
// where data is (holes stay holes); otherwise bytes are written in order,
// zeros included, as a pipe needs. sync: fdatasync in finish().
Result<std::unique_ptr<ConvertSink>> make_raw_sink(int fd, const std::string& name, bool seekable, bool sync);

}  // namespace vdkit
