// CRC-32C (Castagnoli), the checksum of VHDX headers, region tables, metadata and log entries.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vdkit {

// CRC-32C of p[0, n), continuing from `crc` (0 to start).
uint32_t crc32c(const uint8_t* p, size_t n, uint32_t crc = 0);

}  // namespace vdkit
