// LVM2's on-disk structures (lvm2 lib/format_text/layout.h, lib/label/label.h): the PV label in one of the first
// four sectors, the PV header after it, and the metadata area header whose raw location points at the VG text.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"

namespace vdkit::lvm {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint64_t kLabelScanSectors = 4;     // LABELONE lies in sector 0, 1, 2 or 3
inline constexpr uint64_t kMdaHeaderSize = 512;      // MDA_HEADER_SIZE
inline constexpr uint32_t kInitialCrc = 0xf597a6cf;  // lvm2's INITIAL_CRC
inline constexpr size_t kMaxAreas = 8;               // data or metadata areas one PV header may list
inline constexpr char kMdaMagic[] = " LVM2 x[5A%r0N*>";  // FMTT_MAGIC, 16 bytes

// lvm2's crc32: the reflected 0xedb88320 polynomial, seeded by the caller, with no final inversion.
uint32_t crc32(uint32_t initial, std::span<const uint8_t> data);

struct DiskArea {
  uint64_t offset = 0;  // bytes from the start of the PV
  uint64_t size = 0;    // bytes; 0 in a data area means "to the end of the device"
};

struct PvLabel {
  uint64_t label_sector = 0;
  std::string uuid;  // the 32 characters as stored, without dashes
  uint64_t device_size = 0;
  std::vector<DiskArea> data_areas;
  std::vector<DiskArea> metadata_areas;
};

// The label of dev, nullopt when none of sectors 0-3 starts with LABELONE. A LABELONE sector whose CRC, type or
// header does not check out is an error naming the sector and field.
Result<std::optional<PvLabel>> read_pv_label(BlockDevice& dev);

// One metadata copy: the text the raw location of an area's header points at, checked against its CRC.
struct MetadataCopy {
  uint64_t area_offset = 0;
  std::string text;
};

// Reads the committed copy of one metadata area (nullopt when the area holds none, or marks it ignored).
// Text that wraps past the end of the area continues right after its 512-byte header.
Result<std::optional<MetadataCopy>> read_metadata_area(BlockDevice& dev, const DiskArea& area);

// "abcdef-ghij-..." as lvm2 prints UUIDs (6-4-4-4-4-4-6), from 32 stored characters.
std::string format_uuid(const std::string& raw);

}  // namespace vdkit::lvm
