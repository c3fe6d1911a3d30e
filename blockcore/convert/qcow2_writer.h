// The streaming qcow2 (version 3) target writer: one sequential pass to a file, or laid out in advance for a pipe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "blockcore/base/codec.h"
#include "blockcore/convert/convert.h"

namespace vdkit {

// Named limits of the writer (qcow2 allows 512 B to 2 MiB clusters; QEMU
// refuses L1 tables over 32 MiB, which bounds the virtual size).
inline constexpr uint64_t kQcow2MinClusterSize = 512;
inline constexpr uint64_t kQcow2MaxClusterSize = 2u << 20;
inline constexpr uint64_t kQcow2MaxL1Bytes = 32u << 20;

struct Qcow2WriterOptions {
  uint64_t cluster_size = 64u << 10;
  bool compress = false;
  Codec codec = Codec::kDeflate;  // kDeflate ("zlib" in qcow2 terms) or kZstd
  bool sync = true;
  TargetIo target_io;
};

// fd: the target, owned by the caller (the sink works on a duplicate).
//  seekable: data clusters are appended as they come, each L2 table right
//   after the data it maps; L1, refcount table and blocks go at the end and
//   the header is written last. One pass over the source.
//  not seekable (a pipe): needs_plan() is true; the pipeline shows every
//   chunk once (plan) so the sink can lay out header, L1, refcounts and L2
//   tables before the data, then the data follows in order.
// Either way: no cluster for zeros, refcounts exact, `qemu-img check` clean.
Result<std::unique_ptr<ConvertSink>> make_qcow2_sink(int fd, const std::string& name, bool seekable,
                                                     const Qcow2WriterOptions& opts);

class SequentialOut;

// The qcow2 laid out in advance (as for a pipe) onto a device or NBD export
// written in order through `out`: the source is read twice, and the layout
// is known before any byte is written, so its end is checked against
// `max_end` first. Cluster 0 holds zeros until finish(), which flushes the
// rest and only then writes the header: an interrupted run never leaves an
// image that opens with tables pointing at old bytes. `start` (a chunk
// boundary) resumes a run: the metadata is written again (it is the same for
// an unchanged source) and data continues with the clusters from `start`.
// flush_reached() is supported.
struct Qcow2InPlaceOptions {
  uint64_t max_end = 0;
  uint64_t start = 0;
};
Result<std::unique_ptr<ConvertSink>> make_qcow2_in_place_sink(std::unique_ptr<SequentialOut> out,
                                                              const std::string& name, const Qcow2WriterOptions& opts,
                                                              const Qcow2InPlaceOptions& place);

}  // namespace vdkit
