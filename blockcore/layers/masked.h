// MaskedDevice: a read-only view of a device in which given byte ranges read as zeros and show as holes.
#pragma once

#include <cstdint>
#include <memory>

#include "blockcore/base/block_device.h"
#include "blockcore/base/byte_ranges.h"

namespace vdkit {

// A view of base where every byte of `masked` reads as zero and is reported as a hole, without being read from
// base: sparsify's way of dropping what the guest does not use (the ranges come from the guest's own metadata,
// computed above blockcore). Ranges need not be sorted or aligned; parts outside base are ignored. The view is
// read-only: writing through it would hide the write in a masked range.
BlockDevicePtr make_masked_device(std::shared_ptr<BlockDevice> base, ByteRanges masked);

}  // namespace vdkit
