// Sinks for targets written in place (block devices, NBD exports): raw with zeros written, qcow2 laid out, periodic
// flushes.
#pragma once

#include <functional>
#include <memory>

#include "blockcore/convert/convert.h"
#include "blockcore/convert/output_target.h"

namespace vdkit {

// How often a run in place is flushed so a resumed run loses little.
inline constexpr double kDefaultCheckpointSeconds = 5.0;
inline constexpr uint64_t kCheckpointBytes = 1ull << 30;

struct InPlaceOptions {
  // Resume point: a virtual offset on a chunk boundary (0: from the start).
  uint64_t start = 0;
  // A flush after at least this many seconds or kCheckpointBytes of source.
  double checkpoint_seconds = kDefaultCheckpointSeconds;
  // Called after each flush with the virtual offset below which the target is
  // complete and durable (the end of the last chunk put); an error stops the run.
  std::function<Status(uint64_t)> on_flushed;
};

// The sink for `target`: raw (opts.format kRaw) writes data and makes every
// range between data read as zeros (OutputTarget::zero) unless
// opts.target_is_zero; qcow2 is laid out in advance (make_qcow2_in_place_sink),
// its end checked against the target's size before anything is written. Both
// flush every InPlaceOptions::checkpoint_seconds and report through on_flushed.
Result<std::unique_ptr<ConvertSink>> make_in_place_sink(OutputTarget& target, const ConvertOptions& opts,
                                                        const InPlaceOptions& place);

}  // namespace vdkit
