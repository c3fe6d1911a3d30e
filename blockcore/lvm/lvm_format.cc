// Reads the PV label, the PV header and the metadata areas, checking every CRC and every offset against the PV.
#include "blockcore/lvm/lvm_format.h"

#include <array>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/lvm/lvm_text.h"

namespace vdkit::lvm {

namespace {

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_table();

// label_header: id[8] "LABELONE", sector u64, crc u32 (of bytes 20..512), offset u32 (to the PV header), type[8].
constexpr size_t kLabelCrcFrom = 20;
constexpr size_t kLabelHeaderSize = 32;
// pv_header: uuid[32], device_size u64, then two lists of {offset u64, size u64} each ended by a zero entry.
constexpr size_t kPvUuidLen = 32;
// mda_header: checksum u32 (of bytes 4..512), magic[16], version u32, start u64, size u64, raw_locn list
// {offset u64, size u64, checksum u32, flags u32} (24 bytes each).
constexpr size_t kRawLocnOffset = 40;
constexpr uint32_t kRawLocnIgnored = 1;

std::string sector_name(uint64_t s) { return "PV label in sector " + std::to_string(s); }

}  // namespace

uint32_t crc32(uint32_t initial, std::span<const uint8_t> data) {
  uint32_t crc = initial;
  for (uint8_t b : data) crc = kCrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

std::string format_uuid(const std::string& raw) {
  if (raw.size() != kPvUuidLen) return raw;
  static constexpr size_t kGroups[] = {6, 4, 4, 4, 4, 4, 6};
  std::string out;
  size_t p = 0;
  for (size_t g : kGroups) {
    if (!out.empty()) out += '-';
    out += raw.substr(p, g);
    p += g;
  }
  return out;
}

Result<std::optional<PvLabel>> read_pv_label(BlockDevice& dev) {
  if (dev.size() < kLabelScanSectors * kSectorSize) return std::optional<PvLabel>();
  std::vector<uint8_t> buf(kLabelScanSectors * kSectorSize);
  VDKIT_RETURN_IF_ERROR(dev.read(0, buf).Context("reading the LVM label sectors"));
  for (uint64_t s = 0; s < kLabelScanSectors; ++s) {
    const uint8_t* sec = buf.data() + s * kSectorSize;
    if (std::memcmp(sec, "LABELONE", 8) != 0) continue;
    const std::string where = sector_name(s);
    if (load_le64(sec + 8) != s)
      return Status::Corrupt(where + ": field sector_xl says " + std::to_string(load_le64(sec + 8)));
    uint32_t want = load_le32(sec + 16);
    uint32_t got = crc32(kInitialCrc, {sec + kLabelCrcFrom, kSectorSize - kLabelCrcFrom});
    if (want != got) return Status::Corrupt(where + ": CRC " + hex(got) + " does not match crc_xl " + hex(want));
    if (std::memcmp(sec + 24, "LVM2 001", 8) != 0)
      return Status::Unsupported(where + ": type '" + std::string(reinterpret_cast<const char*>(sec + 24), 8) +
                                 "' is not 'LVM2 001'");
    uint32_t off = load_le32(sec + 20);
    // The PV header must fit in the label sector: uuid, size and at least the two list terminators.
    if (off < kLabelHeaderSize || off > kSectorSize - (kPvUuidLen + 8 + 32))
      return Status::Corrupt(where + ": field offset_xl " + std::to_string(off) + " is outside the sector");
    PvLabel label;
    label.label_sector = s;
    const uint8_t* pvh = sec + off;
    label.uuid.assign(reinterpret_cast<const char*>(pvh), kPvUuidLen);
    for (char c : label.uuid)
      if (!std::isalnum(static_cast<unsigned char>(c)))
        return Status::Corrupt(where + ": PV UUID has a byte that is not a letter or digit");
    label.device_size = load_le64(pvh + kPvUuidLen);
    size_t p = off + kPvUuidLen + 8;
    for (int list = 0; list < 2; ++list) {
      auto& out = list == 0 ? label.data_areas : label.metadata_areas;
      for (;;) {
        if (p + 16 > kSectorSize)
          return Status::Corrupt(where + ": the " + (list == 0 ? "data" : "metadata") +
                                 " area list runs past the sector");
        uint64_t a_off = load_le64(sec + p), a_size = load_le64(sec + p + 8);
        p += 16;
        if (a_off == 0) break;
        if (out.size() >= kMaxAreas)
          return Status::Corrupt(where + ": more than " + std::to_string(kMaxAreas) + " areas in one list");
        if (a_off % kSectorSize != 0)
          return Status::Corrupt(where + ": area offset " + std::to_string(a_off) + " is not sector-aligned");
        out.push_back({a_off, a_size});
      }
    }
    if (label.data_areas.empty()) return Status::Corrupt(where + ": the PV header lists no data area");
    return std::optional<PvLabel>(std::move(label));
  }
  return std::optional<PvLabel>();
}

Result<std::optional<MetadataCopy>> read_metadata_area(BlockDevice& dev, const DiskArea& area) {
  const std::string where = "metadata area at offset " + std::to_string(area.offset);
  if (area.size <= kMdaHeaderSize || !range_within(area.offset, area.size, dev.size()))
    return Status::Corrupt(where + ": size " + std::to_string(area.size) + " does not fit the PV of " +
                           std::to_string(dev.size()) + " bytes");
  std::array<uint8_t, kMdaHeaderSize> h{};
  VDKIT_RETURN_IF_ERROR(dev.read(area.offset, h).Context(where));
  if (std::memcmp(h.data() + 4, kMdaMagic, 16) != 0) return Status::Corrupt(where + ": bad magic in the header");
  uint32_t want = load_le32(h.data());
  uint32_t got = crc32(kInitialCrc, {h.data() + 4, kMdaHeaderSize - 4});
  if (want != got) return Status::Corrupt(where + ": header CRC " + hex(got) + " does not match " + hex(want));
  if (load_le32(h.data() + 20) != 1)
    return Status::Unsupported(where + ": header version " + std::to_string(load_le32(h.data() + 20)));
  if (load_le64(h.data() + 24) != area.offset)
    return Status::Corrupt(where + ": header field start says " + std::to_string(load_le64(h.data() + 24)));
  if (load_le64(h.data() + 32) != area.size)
    return Status::Corrupt(where + ": header field size " + std::to_string(load_le64(h.data() + 32)) +
                           " differs from the PV header's " + std::to_string(area.size));
  // The first raw location is the committed metadata (a second one would be a precommitted copy, unused here).
  const uint8_t* rl = h.data() + kRawLocnOffset;
  uint64_t off = load_le64(rl), size = load_le64(rl + 8);
  uint32_t text_crc = load_le32(rl + 16), flags = load_le32(rl + 20);
  if (off == 0 || size == 0 || (flags & kRawLocnIgnored)) return std::optional<MetadataCopy>();
  const uint64_t ring = area.size - kMdaHeaderSize;
  if (off < kMdaHeaderSize || off >= area.size)
    return Status::Corrupt(where + ": raw location offset " + std::to_string(off) + " is outside the area");
  if (size > ring || size > kMaxTextBytes)
    return Status::Corrupt(where + ": raw location size " + std::to_string(size) + " does not fit the area");
  MetadataCopy copy;
  copy.area_offset = area.offset;
  copy.text.resize(size);
  auto* dst = reinterpret_cast<uint8_t*>(copy.text.data());
  uint64_t first = std::min(size, area.size - off);
  VDKIT_RETURN_IF_ERROR(dev.read(area.offset + off, {dst, first}).Context(where));
  if (first < size)
    VDKIT_RETURN_IF_ERROR(dev.read(area.offset + kMdaHeaderSize, {dst + first, size - first}).Context(where));
  got = crc32(kInitialCrc, {dst, size});
  if (got != text_crc)
    return Status::Corrupt(where + ": metadata text CRC " + hex(got) + " does not match " + hex(text_crc));
  return std::optional<MetadataCopy>(std::move(copy));
}

}  // namespace vdkit::lvm
