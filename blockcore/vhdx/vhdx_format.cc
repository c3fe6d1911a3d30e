// VHDX headers, region table and metadata: read, checksummed with CRC-32C and checked against the named limits.
#include "blockcore/vhdx/vhdx_format.h"

#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/crc32c.h"
#include "blockcore/base/ondisk_text.h"

namespace vdkit::vhdx {

namespace {

constexpr const char* kBatRegion = "2dc27766-f623-4200-9d64-115e9bfd4a08";
constexpr const char* kMetadataRegion = "8b7ca206-4790-4b9a-b8fe-575f050f886e";
constexpr const char* kFileParameters = "caa16737-fa36-4d43-b3b6-33f0aa44e76b";
constexpr const char* kVirtualDiskSize = "2fa54224-cd1b-4876-b211-5dbed83bf4b8";
constexpr const char* kVirtualDiskId = "beca12ab-b2e6-4523-93ef-c309e000c746";
constexpr const char* kLogicalSectorSize = "8141bf1d-a96f-4709-ba47-f233a8faab5f";
constexpr const char* kPhysicalSectorSize = "cda348c7-445d-4471-9cc9-e9885251c556";
constexpr const char* kParentLocator = "a8d35f2d-b30b-454d-abf7-d3d84834ab0c";
constexpr const char* kVhdxParentLocatorType = "b04aefb7-d19e-4a81-b789-25b8e9445913";

// True when the CRC-32C of buf, with its 4-byte checksum field at `at` taken as zero, is the stored one.
bool crc_ok(std::vector<uint8_t>& buf, size_t at) {
  uint32_t stored = load_le32(&buf[at]);
  std::memset(&buf[at], 0, 4);
  uint32_t computed = crc32c(buf.data(), buf.size());
  store_le32(&buf[at], stored);
  return stored == computed;
}

Result<Header> parse_header(const ReadAt& read, uint64_t at, const std::string& where) {
  std::vector<uint8_t> b(kHeaderBytes);
  VDKIT_RETURN_IF_ERROR(read(at, b.data(), b.size()));
  if (std::memcmp(b.data(), "head", 4) != 0)
    return Status::Corrupt("'" + where + "': no header at " + hex(at) + " (signature is not \"head\")");
  if (!crc_ok(b, 4)) return Status::Corrupt("'" + where + "': the header at " + hex(at) + " fails its CRC-32C");
  uint16_t version = load_le16(&b[66]);
  if (version != 1)
    return Status::Unsupported("'" + where + "': the header at " + hex(at) + " has Version " +
                               std::to_string(version) + "; vdkit reads version 1");
  Header h;
  h.offset = at;
  h.sequence = load_le64(&b[8]);
  std::memcpy(h.file_write_guid, &b[16], 16);
  std::memcpy(h.data_write_guid, &b[32], 16);
  std::memcpy(h.log_guid, &b[48], 16);
  h.log_version = load_le16(&b[64]);
  h.log_length = load_le32(&b[68]);
  h.log_offset = load_le64(&b[72]);
  return h;
}

std::string region_error(const std::string& where, uint64_t at, const std::string& what) {
  return "'" + where + "': region table at " + hex(at) + ": " + what;
}

}  // namespace

bool Header::log_active() const {
  for (uint8_t b : log_guid)
    if (b) return true;
  return false;
}

Result<Header> read_current_header(const ReadAt& read, const std::string& where) {
  uint8_t id[8];
  VDKIT_RETURN_IF_ERROR(read(0, id, sizeof id));
  if (std::memcmp(id, "vhdxfile", 8) != 0)
    return Status::Corrupt("'" + where + "': not a VHDX (no \"vhdxfile\" at offset 0)");
  auto h1 = parse_header(read, 64u << 10, where);
  auto h2 = parse_header(read, 128u << 10, where);
  if (!h1.ok() && !h2.ok())
    return Status::Corrupt("'" + where + "': neither header is valid (" + h1.status().message() + "; " +
                           h2.status().message() + ")");
  if (!h2.ok()) return h1;
  if (!h1.ok()) return h2;
  if (h1->sequence == h2->sequence)
    return Status::Corrupt("'" + where + "': both headers carry sequence number " + std::to_string(h1->sequence));
  return h1->sequence > h2->sequence ? h1 : h2;
}

Result<Layout> read_layout(const ReadAt& read, uint64_t file_size, const std::string& where) {
  Layout l;
  VDKIT_ASSIGN_OR_RETURN(l.header, read_current_header(read, where));
  std::vector<uint8_t> creator(512);
  VDKIT_RETURN_IF_ERROR(read(8, creator.data(), creator.size()));
  l.creator = utf16_to_utf8(creator.data(), creator.size());

  // The region table: the first copy, or the second when the first is damaged.
  std::vector<uint8_t> rt(kRegionTableBytes);
  Status first;
  bool found = false;
  for (uint64_t at : {192u << 10, 256u << 10}) {
    VDKIT_RETURN_IF_ERROR(read(at, rt.data(), rt.size()));
    if (std::memcmp(rt.data(), "regi", 4) != 0) {
      if (first.ok()) first = Status::Corrupt(region_error(where, at, "signature is not \"regi\""));
      continue;
    }
    if (!crc_ok(rt, 4)) {
      if (first.ok()) first = Status::Corrupt(region_error(where, at, "fails its CRC-32C"));
      continue;
    }
    uint32_t count = load_le32(&rt[8]);
    if (count > kMaxTableEntries)
      return Status::Corrupt(region_error(where, at, "EntryCount " + std::to_string(count) + " is over the limit of " +
                                                          std::to_string(kMaxTableEntries)));
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t* e = &rt[16 + 32 * i];
      std::string guid = guid_string(e);
      uint64_t off = load_le64(e + 16);
      uint32_t len = load_le32(e + 24);
      bool required = load_le32(e + 28) & 1;
      std::string name = "entry " + std::to_string(i) + " (" + guid + ")";
      if (off % kMiB || len % kMiB || off < kMiB || !range_within(off, len, file_size))
        return Status::Corrupt(region_error(where, at, name + " at " + hex(off) + " + " + std::to_string(len) +
                                                           " bytes is not MiB-aligned inside the file (" +
                                                           std::to_string(file_size) + " bytes)"));
      if (guid == kBatRegion) {
        l.bat_offset = off;
        l.bat_length = len;
      } else if (guid == kMetadataRegion) {
        l.metadata_offset = off;
        l.metadata_length = len;
      } else if (required) {
        return Status::Unsupported(region_error(where, at, name + " is a required region vdkit does not know"));
      }
    }
    found = true;
    break;
  }
  if (!found) return first;
  if (!l.bat_length || !l.metadata_length)
    return Status::Corrupt("'" + where + "': the region table lacks the BAT or the metadata region");
  if (l.metadata_length > kMaxMetadataBytes)
    return Status::Unsupported("'" + where + "': metadata region of " + std::to_string(l.metadata_length) +
                               " bytes, more than the limit of " + std::to_string(kMaxMetadataBytes));

  // Metadata.
  std::vector<uint8_t> md(l.metadata_length);
  VDKIT_RETURN_IF_ERROR(read(l.metadata_offset, md.data(), md.size()));
  const std::string mwhere = "'" + where + "': metadata region at " + hex(l.metadata_offset);
  if (md.size() < 64 * 1024 || std::memcmp(md.data(), "metadata", 8) != 0)
    return Status::Corrupt(mwhere + ": no metadata table (signature is not \"metadata\")");
  uint16_t count = load_le16(&md[10]);
  if (count > kMaxTableEntries)
    return Status::Corrupt(mwhere + ": EntryCount " + std::to_string(count) + " is over the limit");
  bool have_params = false, have_size = false, have_lss = false;
  for (uint16_t i = 0; i < count; ++i) {
    const uint8_t* e = &md[32 + 32 * i];
    std::string guid = guid_string(e);
    uint32_t off = load_le32(e + 16), len = load_le32(e + 20), flags = load_le32(e + 24);
    std::string name = mwhere + ": item " + std::to_string(i) + " (" + guid + ")";
    if (len && (off < 64 * 1024 || !range_within(off, len, md.size())))
      return Status::Corrupt(name + " at " + hex(off) + " + " + std::to_string(len) + " lies outside the region");
    const uint8_t* v = &md[off];
    auto need = [&](uint32_t n) -> Status {
      return len >= n ? Status::Ok()
                      : Status::Corrupt(name + " is " + std::to_string(len) + " bytes, fewer than " + std::to_string(n));
    };
    if (guid == kFileParameters) {
      VDKIT_RETURN_IF_ERROR(need(8));
      l.block_bytes = load_le32(v);
      uint32_t f = load_le32(v + 4);
      l.leave_blocks_allocated = f & 1;
      l.has_parent = f & 2;
      have_params = true;
    } else if (guid == kVirtualDiskSize) {
      VDKIT_RETURN_IF_ERROR(need(8));
      l.virtual_size = load_le64(v);
      have_size = true;
    } else if (guid == kVirtualDiskId) {
      VDKIT_RETURN_IF_ERROR(need(16));
      l.disk_id = guid_string(v);
    } else if (guid == kLogicalSectorSize) {
      VDKIT_RETURN_IF_ERROR(need(4));
      l.logical_sector = load_le32(v);
      have_lss = true;
    } else if (guid == kPhysicalSectorSize) {
      VDKIT_RETURN_IF_ERROR(need(4));
      l.physical_sector = load_le32(v);
    } else if (guid == kParentLocator) {
      VDKIT_RETURN_IF_ERROR(need(20));
      if (len > kMaxParentLocatorBytes)
        return Status::Corrupt(name + ": a parent locator of " + std::to_string(len) + " bytes is over the limit");
      if (guid_string(v) != kVhdxParentLocatorType)
        return Status::Unsupported(name + ": parent locator type " + guid_string(v) + " is not the VHDX one");
      uint16_t kv = load_le16(v + 18);
      if (20 + uint64_t{kv} * 12 > len) return Status::Corrupt(name + ": " + std::to_string(kv) + " entries overflow it");
      for (uint16_t k = 0; k < kv; ++k) {
        const uint8_t* p = v + 20 + 12 * k;
        uint32_t ko = load_le32(p), vo = load_le32(p + 4);
        uint16_t kl = load_le16(p + 8), vl = load_le16(p + 10);
        if (!range_within(ko, kl, len) || !range_within(vo, vl, len))
          return Status::Corrupt(name + ": locator entry " + std::to_string(k) + " points outside the locator");
        l.parent_locator.emplace_back(utf16_to_utf8(v + ko, kl), utf16_to_utf8(v + vo, vl));
      }
    } else if (flags & 4) {
      return Status::Unsupported(name + " is a required metadata item vdkit does not know");
    }
  }
  if (!have_params || !have_size || !have_lss)
    return Status::Corrupt(mwhere + ": the file parameters, virtual disk size or logical sector size item is missing");
  if (!is_power_of_two(l.block_bytes) || l.block_bytes < kMiB || l.block_bytes > 256 * kMiB)
    return Status::Corrupt(mwhere + ": BlockSize " + std::to_string(l.block_bytes) +
                           " is not a power of two from 1 MiB to 256 MiB");
  if (l.logical_sector != 512 && l.logical_sector != 4096)
    return Status::Corrupt(mwhere + ": LogicalSectorSize " + std::to_string(l.logical_sector) + " is not 512 or 4096");
  if (l.virtual_size > kMaxVirtualBytes || l.virtual_size % l.logical_sector)
    return Status::Corrupt(mwhere + ": VirtualDiskSize " + std::to_string(l.virtual_size) +
                           " is over 64 TiB or not a whole number of logical sectors");
  if (l.has_parent && l.parent_locator.empty())
    return Status::Corrupt(mwhere + ": HasParent is set but there is no parent locator");

  l.chunk_ratio = ((1ull << 23) * l.logical_sector) / l.block_bytes;
  l.payload_blocks = div_round_up(l.virtual_size, l.block_bytes);
  uint64_t chunks = div_round_up(l.payload_blocks, l.chunk_ratio);
  l.bat_entries = l.has_parent ? chunks * (l.chunk_ratio + 1)
                               : (l.payload_blocks ? l.payload_blocks + (l.payload_blocks - 1) / l.chunk_ratio : 0);
  if (l.bat_entries * 8 > l.bat_length || l.bat_entries * 8 > kMaxBatBytes)
    return Status::Corrupt("'" + where + "': the BAT needs " + std::to_string(l.bat_entries) +
                           " entries, more than its region (" + std::to_string(l.bat_length) +
                           " bytes) or the limit of " + std::to_string(kMaxBatBytes) + " bytes holds");
  return l;
}

}  // namespace vdkit::vhdx
