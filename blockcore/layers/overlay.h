// Copy-on-write layers over a read-only source: in memory, or a qcow2 file whose backing file is the source.
#pragma once

#include <memory>
#include <string>

#include "blockcore/base/block_device.h"
#include "blockcore/sources/image.h"

namespace vdkit {

// Writes (write, zero, trim) land in memory; reads see them over base, which
// is never written. Extents report written ranges as data (or zero). Thread-safe.
BlockDevicePtr make_memory_overlay(std::shared_ptr<BlockDevice> base);

// Creates a new qcow2 (version 3) file at overlay_path whose backing file is
// source_path with format source_format, of virtual size `size`, and opens it
// writable; the returned device reads through to the source. The backing name
// is stored relative to the overlay's folder when the source lies below it,
// absolute otherwise, so qemu-img and vdkit can read the pair later.
// EEXIST when overlay_path exists. Implemented by the qcow2 driver.
Result<BlockDevicePtr> create_qcow2_overlay(const std::string& overlay_path, const std::string& source_path,
                                            const std::string& source_format, uint64_t size,
                                            const OpenOptions& options);

}  // namespace vdkit
