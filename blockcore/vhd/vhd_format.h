// Internal to the VHD driver: the on-disk footer, dynamic header and parent locators, parsed and checked.
//
// Layout (Microsoft "Virtual Hard Disk Image Format Specification"): every field is big-endian. A fixed disk is
// the raw data followed by a 512-byte footer. A dynamic or differencing disk is a copy of the footer at offset 0,
// a 1024-byte dynamic header, the block allocation table (BAT: 32-bit sector numbers, 0xffffffff for a block
// stored nowhere), blocks (a sector bitmap padded to whole sectors, then the block's data) and the footer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::vhd {

inline constexpr uint64_t kSectorBytes = 512;
inline constexpr uint64_t kFooterBytes = 512;
inline constexpr uint64_t kDynamicHeaderBytes = 1024;
inline constexpr uint32_t kBatUnused = 0xffffffff;
inline constexpr int kParentLocators = 8;

// Named limits. The specification caps a disk at 2040 GiB; XenServer and Hyper-V stay below 2 TiB. vdkit takes
// up to 16 TiB so that nothing real is refused, and bounds the BAT (held in memory) at 64 MiB.
inline constexpr uint64_t kMaxVirtualBytes = 16ull << 40;
inline constexpr uint32_t kMaxBatEntries = 16u << 20;
inline constexpr uint32_t kMinBlockBytes = 512;
inline constexpr uint32_t kMaxBlockBytes = 256u << 20;
inline constexpr uint32_t kMaxLocatorBytes = 64u << 10;  // a UTF-16 path of 32 Ki characters

enum class DiskType : uint32_t { kFixed = 2, kDynamic = 3, kDifferencing = 4 };

struct Footer {
  uint32_t features = 0;
  uint32_t version = 0;
  uint64_t data_offset = 0;  // the dynamic header; all ones for a fixed disk
  uint32_t timestamp = 0;    // seconds since 2000-01-01 UTC
  char creator_app[5] = {};
  uint32_t creator_version = 0;
  char creator_os[5] = {};
  uint64_t original_size = 0;
  uint64_t current_size = 0;
  uint16_t cylinders = 0;
  uint8_t heads = 0;
  uint8_t sectors_per_track = 0;
  DiskType type = DiskType::kFixed;
  uint8_t uuid[16] = {};
  uint8_t saved_state = 0;
  // The size CHS geometry gives (what Virtual PC and, for some creators, QEMU use instead of current_size).
  uint64_t chs_bytes() const { return uint64_t{cylinders} * heads * sectors_per_track * kSectorBytes; }
};

struct ParentLocator {
  uint32_t code = 0;  // platform code, e.g. 'W2ru'
  uint32_t data_space = 0;
  uint32_t data_length = 0;
  uint64_t data_offset = 0;
};

struct DynamicHeader {
  uint64_t table_offset = 0;
  uint32_t version = 0;
  uint32_t max_table_entries = 0;
  uint32_t block_bytes = 0;
  uint8_t parent_uuid[16] = {};
  uint32_t parent_timestamp = 0;
  std::string parent_name;  // UTF-16BE in the header, as UTF-8
  ParentLocator locators[kParentLocators];
};

// The VHD checksum: the one's complement of the byte sum of the structure with its checksum field taken as zero.
uint32_t checksum(const uint8_t* p, size_t n, size_t checksum_at);

// True when the 512 bytes carry the footer cookie "conectix" (before any other check).
bool has_footer_cookie(const uint8_t* p);

// Parses and checks a footer read at file offset `at`: cookie, checksum, version, disk type and size limits.
Result<Footer> parse_footer(const uint8_t* p, const std::string& where, uint64_t at);

// Parses and checks the dynamic header: cookie, checksum, version, block size, BAT entries against the disk size.
Result<DynamicHeader> parse_dynamic_header(const uint8_t* p, const Footer& footer, const std::string& where,
                                           uint64_t at);

// "W2ru", or the hex value when the code is not four printable characters.
std::string platform_code_name(uint32_t code);

// Turns a locator's raw data into a POSIX path name, or "" when the platform code is not one vdkit follows.
// W2ru/W2ku: UTF-16LE Windows paths (".\\parent.vhd", "C:\\dir\\parent.vhd"; the drive letter is dropped and the
// name is absolute); MacX: a UTF-8 file URL ("file://localhost/dir/parent.vhd", "file://./parent.vhd"), %XX decoded.
std::string locator_path(uint32_t code, const std::vector<uint8_t>& data);

inline constexpr uint32_t kCodeW2ru = 0x57327275;  // "W2ru"
inline constexpr uint32_t kCodeW2ku = 0x57326b75;  // "W2ku"
inline constexpr uint32_t kCodeMacX = 0x4d616358;  // "MacX"

}  // namespace vdkit::vhd
