// VHD footer, dynamic header and parent locator parsing, each field checked against the named limits.
#include "blockcore/vhd/vhd_format.h"

#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/ondisk_text.h"
#include "blockcore/sources/image.h"

namespace vdkit::vhd {

namespace {

std::string at_field(const std::string& where, const char* structure, uint64_t at, const char* field,
                     unsigned offset) {
  return "'" + where + "': " + structure + " at " + hex(at) + ", field " + field + " (offset " + std::to_string(offset) +
         ")";
}

void copy4(char out[5], const uint8_t* p) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(p[i]);
  out[4] = 0;
}

}  // namespace

uint32_t checksum(const uint8_t* p, size_t n, size_t checksum_at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i >= checksum_at && i < checksum_at + 4) continue;
    sum += p[i];
  }
  return ~sum;
}

bool has_footer_cookie(const uint8_t* p) { return std::memcmp(p, "conectix", 8) == 0; }

Result<Footer> parse_footer(const uint8_t* p, const std::string& where, uint64_t at) {
  if (!has_footer_cookie(p))
    return Status::Corrupt("'" + where + "': no VHD footer at " + hex(at) + " (the cookie is not \"conectix\")");
  uint32_t stored = load_be32(p + 64), computed = checksum(p, kFooterBytes, 64);
  if (stored != computed)
    return Status::Corrupt(at_field(where, "footer", at, "Checksum", 64) + " is " + hex(stored) +
                           " but the footer sums to " + hex(computed));
  Footer f;
  f.features = load_be32(p + 8);
  f.version = load_be32(p + 12);
  if (f.version >> 16 != 1)
    return Status::Unsupported(at_field(where, "footer", at, "File Format Version", 12) + " is " + hex(f.version) +
                               "; vdkit reads version 1.x");
  f.data_offset = load_be64(p + 16);
  f.timestamp = load_be32(p + 24);
  copy4(f.creator_app, p + 28);
  f.creator_version = load_be32(p + 32);
  copy4(f.creator_os, p + 36);
  f.original_size = load_be64(p + 40);
  f.current_size = load_be64(p + 48);
  f.cylinders = load_be16(p + 56);
  f.heads = p[58];
  f.sectors_per_track = p[59];
  uint32_t type = load_be32(p + 60);
  if (type != 2 && type != 3 && type != 4)
    return Status::Unsupported(at_field(where, "footer", at, "Disk Type", 60) + " is " + std::to_string(type) +
                               "; vdkit reads fixed (2), dynamic (3) and differencing (4) disks");
  f.type = static_cast<DiskType>(type);
  std::memcpy(f.uuid, p + 68, 16);
  f.saved_state = p[84];
  if (f.current_size > kMaxVirtualBytes)
    return Status::Unsupported(at_field(where, "footer", at, "Current Size", 48) + " is " +
                               std::to_string(f.current_size) + " bytes, more than the limit of " +
                               std::to_string(kMaxVirtualBytes) + " (kMaxVirtualBytes)");
  if (f.current_size % kSectorBytes)
    return Status::Corrupt(at_field(where, "footer", at, "Current Size", 48) + " is " +
                           std::to_string(f.current_size) + " bytes, not a whole number of 512-byte sectors");
  return f;
}

Result<DynamicHeader> parse_dynamic_header(const uint8_t* p, const Footer& footer, const std::string& where,
                                           uint64_t at) {
  if (std::memcmp(p, "cxsparse", 8) != 0)
    return Status::Corrupt("'" + where + "': no dynamic disk header at " + hex(at) +
                           " (footer field Data Offset); the cookie is not \"cxsparse\"");
  uint32_t stored = load_be32(p + 36), computed = checksum(p, kDynamicHeaderBytes, 36);
  if (stored != computed)
    return Status::Corrupt(at_field(where, "dynamic header", at, "Checksum", 36) + " is " + hex(stored) +
                           " but the header sums to " + hex(computed));
  DynamicHeader h;
  h.table_offset = load_be64(p + 16);
  h.version = load_be32(p + 24);
  if (h.version >> 16 != 1)
    return Status::Unsupported(at_field(where, "dynamic header", at, "Header Version", 24) + " is " +
                               hex(h.version) + "; vdkit reads version 1.x");
  h.max_table_entries = load_be32(p + 28);
  h.block_bytes = load_be32(p + 32);
  if (!is_power_of_two(h.block_bytes) || h.block_bytes < kMinBlockBytes || h.block_bytes > kMaxBlockBytes)
    return Status::Corrupt(at_field(where, "dynamic header", at, "Block Size", 32) + " is " +
                           std::to_string(h.block_bytes) + "; it must be a power of two from " +
                           std::to_string(kMinBlockBytes) + " to " + std::to_string(kMaxBlockBytes) +
                           " (kMaxBlockBytes)");
  if (h.max_table_entries > kMaxBatEntries)
    return Status::Unsupported(at_field(where, "dynamic header", at, "Max Table Entries", 28) + " is " +
                               std::to_string(h.max_table_entries) + ", more than the limit of " +
                               std::to_string(kMaxBatEntries) + " (kMaxBatEntries)");
  uint64_t blocks = div_round_up(footer.current_size, h.block_bytes);
  if (h.max_table_entries < blocks)
    return Status::Corrupt(at_field(where, "dynamic header", at, "Max Table Entries", 28) + " is " +
                           std::to_string(h.max_table_entries) + ", fewer than the " + std::to_string(blocks) +
                           " blocks of " + std::to_string(h.block_bytes) + " bytes the disk size (" +
                           std::to_string(footer.current_size) + " bytes) needs");
  std::memcpy(h.parent_uuid, p + 40, 16);
  h.parent_timestamp = load_be32(p + 56);
  h.parent_name = utf16_to_utf8(p + 64, 512, /*big_endian=*/true);
  for (int i = 0; i < kParentLocators; ++i) {
    const uint8_t* e = p + 576 + 24 * i;
    h.locators[i] = ParentLocator{load_be32(e), load_be32(e + 4), load_be32(e + 8), load_be64(e + 16)};
  }
  return h;
}

std::string platform_code_name(uint32_t code) {
  std::string s;
  for (int i = 3; i >= 0; --i) {
    char c = static_cast<char>(code >> (8 * i));
    if (c < 0x20 || c > 0x7e) return hex(code);
    s += c;
  }
  return s;
}

std::string locator_path(uint32_t code, const std::vector<uint8_t>& data) {
  std::string s;
  if (code == kCodeW2ru || code == kCodeW2ku) {
    return posix_from_windows_path(utf16_to_utf8(data.data(), data.size()));
  }
  if (code == kCodeMacX) {
    std::string url(data.begin(), data.end());
    if (auto nul = url.find('\0'); nul != std::string::npos) url.resize(nul);
    if (url.rfind("file://", 0) != 0) return url;  // not a file URL: resolve_reference judges it as a name
    url = url.substr(7);
    if (url.rfind("localhost/", 0) == 0) url = url.substr(9);
    for (size_t i = 0; i < url.size(); ++i) {
      if (url[i] == '%' && i + 2 < url.size() && isxdigit(static_cast<unsigned char>(url[i + 1])) &&
          isxdigit(static_cast<unsigned char>(url[i + 2]))) {
        s += static_cast<char>(std::stoi(url.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        s += url[i];
      }
    }
    return s;
  }
  return "";
}

}  // namespace vdkit::vhd
