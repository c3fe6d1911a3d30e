// From names to a finished target: the sink for a target and the whole conversion of a source name to a target name.
#pragma once

#include <memory>
#include <string>

#include "blockcore/convert/convert.h"

namespace vdkit {

// Makes the sink for a target: `fd` is an open target (a regular file at
// offset 0, or a pipe/terminal when !seekable). `name` is for messages.
Result<std::unique_ptr<ConvertSink>> make_sink(int fd, const std::string& name, bool seekable,
                                               const ConvertOptions& opts);

// The front end: converts `source` to `target` ("-" = standard output). The
// source is a path (any format blockcore reads), "-" (standard input: a
// streamOptimized VMDK or raw stream read front to back) or an NBD URI. A
// file target is written as "<target>.vdkit-tmp.<random>" beside it and
// renamed only on success; on any error (or cancel) that file is removed.
//
// A block device or an NBD URI as target is written in place
// (convert_in_place): nothing to rename, so a failure says how far it got.
Result<ConvertStats> convert_path(const std::string& source, const std::string& target, const ConvertOptions& opts);

class StreamSource;

// True when `target` is written in place: an NBD URI or a block device.
bool is_in_place_target(const std::string& target);

// Converts the opened source (dev, or else stream) onto a block device (which
// needs opts.overwrite, and is opened O_EXCL) or an NBD export, at least as
// large as the source. Every range below the source's size is written or
// zeroed (skipped with opts.target_is_zero); the rest of the target is left
// as it was. Every opts.checkpoint_seconds the target is flushed and
// opts.state_file records how far (device sources only); opts.resume
// continues from that record after checking the source is unchanged (size,
// CRC-32 of its first MiB and of the last chunk written). A failure or an
// interrupt flushes what was written and says, in the error, how far the
// target was converted; the record is removed on success.
Result<ConvertStats> convert_in_place(BlockDevice* dev, StreamSource* stream, const std::string& source,
                                      const std::string& target, const ConvertOptions& opts);

}  // namespace vdkit
