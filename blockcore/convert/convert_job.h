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
Result<ConvertStats> convert_path(const std::string& source, const std::string& target, const ConvertOptions& opts);

}  // namespace vdkit
