// Reading a disk whose driver maps it in runs over its own file and an optional parent (VHD and VHDX differencing
// chains): the runs, and the one read and extents walk over them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/io/io_engine.h"

namespace vdkit {

enum class RunKind {
  kStored,  // in this image's file, at `host`
  kZero,    // reads as zeros here, whatever the parent holds
  kAbsent,  // not in this image: the parent's bytes, or zeros without a parent
};

struct MappedRun {
  uint64_t offset = 0;  // in the virtual disk
  uint64_t length = 0;
  RunKind kind = RunKind::kAbsent;
  uint64_t host = 0;  // kStored: where the bytes start in the file
};

// Appends r, merged into the last run when it continues it (same kind, and for stored runs contiguous in the file).
void append_run(std::vector<MappedRun>& out, const MappedRun& r);

// Fills buf, the disk's bytes from `offset`, from `runs` (which tile it): stored runs from `file` in one batch, or
// through `store` when it is given (a copy-on-write layer over the file, such as a replayed VHDX log); zero runs with
// zeros; absent runs from `parent` (zeros past its end: a child may be larger) or with zeros when there is none.
Status read_mapped_runs(const std::vector<MappedRun>& runs, uint64_t offset, std::span<uint8_t> buf, File& file,
                        BlockDevice* store, BlockDevice* parent);

// The extents of `runs`: stored runs are data, zero runs zero, absent runs the parent's extents (holes past its end)
// or holes without a parent.
Status mapped_run_extents(const std::vector<MappedRun>& runs, BlockDevice* parent, std::vector<Extent>& out);

}  // namespace vdkit
