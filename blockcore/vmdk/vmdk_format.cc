// Parsers and checks for VMDK binary structures: the hosted sparse header, stream markers and footer, seSparse headers.
#include "blockcore/vmdk/vmdk_format.h"

#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"

namespace vdkit::vmdk {

namespace {

// "'file': sparse header field grainSize at offset 0x14: ..."
Status field_error(const std::string& where, const char* field, uint64_t at, const std::string& what) {
  return Status::Corrupt("'" + where + "': " + field + " at offset " + hex(at) + " " + what);
}

}  // namespace

uint64_t SparseHeader::gd_entries() const {
  uint64_t per_gde = static_cast<uint64_t>(num_gtes_per_gt) * grain_size;
  return per_gde ? div_round_up(capacity, per_gde) : 0;
}

Result<SparseHeader> parse_sparse_header(std::span<const uint8_t> b, const std::string& where, uint64_t at) {
  if (b.size() < 79) return field_error(where, "sparse extent header", at, "is truncated");
  if (load_le32(b.data()) != kSparseMagic)
    return field_error(where, "sparse extent header magic", at, "is " + hex(load_le32(b.data())) + ", not \"KDMV\"");
  SparseHeader h;
  h.version = load_le32(b.data() + 4);
  h.flags = load_le32(b.data() + 8);
  h.capacity = load_le64(b.data() + 12);
  h.grain_size = load_le64(b.data() + 20);
  h.descriptor_offset = load_le64(b.data() + 28);
  h.descriptor_size = load_le64(b.data() + 36);
  h.num_gtes_per_gt = load_le32(b.data() + 44);
  h.rgd_offset = load_le64(b.data() + 48);
  h.gd_offset = load_le64(b.data() + 56);
  h.overhead = load_le64(b.data() + 64);
  h.unclean_shutdown = b[72] != 0;
  std::memcpy(h.newline_chars, b.data() + 73, 4);
  h.compress_algorithm = load_le16(b.data() + 77);
  return h;
}

Status validate_sparse_header(const SparseHeader& h, const std::string& where, uint64_t at) {
  if (h.version < 1 || h.version > kMaxSparseVersion)
    return Status::Unsupported("'" + where + "': sparse header field version at offset " + hex(at + 4) + " is " +
                               std::to_string(h.version) + "; vdkit reads versions 1 to " +
                               std::to_string(kMaxSparseVersion));
  if ((h.flags & kFlagValidNewlineTest) && (h.newline_chars[0] != '\n' || h.newline_chars[1] != ' ' ||
                                            h.newline_chars[2] != '\r' || h.newline_chars[3] != '\n'))
    return field_error(where, "sparse header newline test characters", at + 73,
                       "are damaged (the file was probably copied in text mode)");
  if (!is_power_of_two(h.grain_size) || h.grain_size > kMaxGrainSectors)
    return field_error(where, "sparse header field grainSize", at + 20,
                       "is " + std::to_string(h.grain_size) + " sectors; it must be a power of two from 1 to " +
                           std::to_string(kMaxGrainSectors) + " (kMaxGrainSectors)");
  if (h.num_gtes_per_gt == 0 || h.num_gtes_per_gt > kMaxGtesPerGt)
    return field_error(where, "sparse header field numGTEsPerGT", at + 44,
                       "is " + std::to_string(h.num_gtes_per_gt) + "; it must be 1 to " +
                           std::to_string(kMaxGtesPerGt) + " (kMaxGtesPerGt)");
  if (h.capacity > kMaxCapacitySectors)
    return field_error(where, "sparse header field capacity", at + 12,
                       "is " + std::to_string(h.capacity) + " sectors, more than the limit of " +
                           std::to_string(kMaxCapacitySectors) + " (kMaxCapacityBytes = 1 PiB)");
  auto gd_bytes = checked_mul(h.gd_entries(), 4);
  if (!gd_bytes || *gd_bytes > kMaxGrainDirectoryBytes)
    return field_error(
        where, "grain directory size (capacity / (grainSize * numGTEsPerGT))", at + 12,
        "exceeds the limit of " + std::to_string(kMaxGrainDirectoryBytes) + " bytes (kMaxGrainDirectoryBytes)");
  if (h.compressed() && h.compress_algorithm != kCompressionDeflate)
    return Status::Unsupported("'" + where + "': sparse header field compressAlgorithm at offset " + hex(at + 77) +
                               " is " + std::to_string(h.compress_algorithm) + "; only 1 (deflate) is known");
  if (!h.compressed() && h.compress_algorithm != kCompressionNone && h.compress_algorithm != kCompressionDeflate)
    return Status::Unsupported("'" + where + "': sparse header field compressAlgorithm at offset " + hex(at + 77) +
                               " is " + std::to_string(h.compress_algorithm));
  if (h.descriptor_offset != 0) {
    if (h.descriptor_size == 0 || h.descriptor_size > kMaxDescriptorBytes / kSectorSize)
      return field_error(where, "sparse header field descriptorSize", at + 36,
                         "is " + std::to_string(h.descriptor_size) + " sectors; the limit is " +
                             std::to_string(kMaxDescriptorBytes / kSectorSize) + " (kMaxDescriptorBytes = 1 MiB)");
    if (h.descriptor_offset > kMaxCapacitySectors)
      return field_error(where, "sparse header field descriptorOffset", at + 28, "is past any possible file size");
  }
  if (h.gd_offset != kGdAtEnd && h.gd_offset > kMaxCapacitySectors)
    return field_error(where, "sparse header field gdOffset", at + 56,
                       "is " + hex(h.gd_offset) + " sectors, past any possible file size");
  if (h.gd_offset == 0 && h.capacity != 0)
    return field_error(where, "sparse header field gdOffset", at + 56, "is 0: no grain directory");
  return Status::Ok();
}

Result<Marker> parse_marker(std::span<const uint8_t> b, const std::string& where, uint64_t at) {
  if (b.size() < kGrainMarkerBytes) return field_error(where, "stream marker", at, "is truncated");
  Marker m;
  m.value = load_le64(b.data());
  m.size = load_le32(b.data() + 8);
  if (m.size == 0) {
    if (b.size() < 16) return field_error(where, "stream marker", at, "is truncated");
    m.type = load_le32(b.data() + 12);
  }
  return m;
}

Result<SparseHeader> parse_stream_footer(std::span<const uint8_t> tail, uint64_t file_size, const std::string& where) {
  if (tail.size() < kStreamTailBytes || file_size < kStreamTailBytes + kSparseHeaderBytes)
    return Status::Corrupt("'" + where + "': streamOptimized footer is missing: the file is too short (" +
                           std::to_string(file_size) + " bytes) to hold header, footer and end-of-stream marker");
  uint64_t base = file_size - kStreamTailBytes;
  auto footer_marker = parse_marker(tail.subspan(0, 512), where, base);
  if (!footer_marker.ok()) return footer_marker.status();
  if (footer_marker->size != 0 || footer_marker->type != static_cast<uint32_t>(MarkerType::kFooter))
    return field_error(where, "streamOptimized footer marker", base,
                       "is missing (gdOffset says the grain directory is found through the footer; the file may be "
                       "truncated)");
  auto eos = parse_marker(tail.subspan(1024, 512), where, base + 1024);
  if (!eos.ok()) return eos.status();
  if (eos->size != 0 || eos->type != static_cast<uint32_t>(MarkerType::kEndOfStream) || eos->value != 0)
    return field_error(where, "streamOptimized end-of-stream marker", base + 1024, "is missing or damaged");
  auto h = parse_sparse_header(tail.subspan(512, 512), where, base + 512);
  if (!h.ok()) return h.status();
  VDKIT_RETURN_IF_ERROR(validate_sparse_header(*h, where, base + 512));
  if (h->gd_offset == kGdAtEnd)
    return field_error(where, "footer field gdOffset", base + 512 + 56, "is again \"at end\" (0xffffffffffffffff)");
  return h;
}

Result<SeSparseHeader> parse_sesparse_header(std::span<const uint8_t> b, const std::string& where) {
  if (b.size() < 0xd0) return field_error(where, "seSparse header", 0, "is truncated");
  if (load_le64(b.data()) != kSeSparseMagic)
    return field_error(where, "seSparse header magic", 0, "is " + hex(load_le64(b.data())) + ", not 0xcafebabe");
  uint64_t version = load_le64(b.data() + 8);
  if (version != kSeSparseVersion)
    return Status::Unsupported("'" + where + "': seSparse header field version at offset 0x8 is " + hex(version) +
                               "; vdkit reads " + hex(kSeSparseVersion));
  SeSparseHeader h;
  h.capacity = load_le64(b.data() + 0x10);
  h.grain_size = load_le64(b.data() + 0x18);
  h.grain_table_size = load_le64(b.data() + 0x20);
  h.flags = load_le64(b.data() + 0x28);
  for (int i = 0; i < 4; ++i) {
    if (load_le64(b.data() + 0x30 + 8 * i) != 0)
      return field_error(where, "seSparse header reserved field", 0x30 + 8 * i, "is not zero");
  }
  uint64_t* fields[] = {
      &h.volatile_header_offset, &h.volatile_header_size, &h.journal_header_offset, &h.journal_header_size,
      &h.journal_offset,         &h.journal_size,         &h.grain_dir_offset,      &h.grain_dir_size,
      &h.grain_tables_offset,    &h.grain_tables_size,    &h.free_bitmap_offset,    &h.free_bitmap_size,
      &h.backmap_offset,         &h.backmap_size,         &h.grains_offset,         &h.grains_size};
  for (size_t i = 0; i < std::size(fields); ++i) {
    *fields[i] = load_le64(b.data() + 0x50 + 8 * i);
    if (*fields[i] > kMaxCapacitySectors)
      return field_error(where, "seSparse header region offset/size", 0x50 + 8 * i,
                         "is " + hex(*fields[i]) + " sectors, past any possible file size");
  }
  if (h.capacity > kMaxCapacitySectors)
    return field_error(where, "seSparse header field capacity", 0x10, "exceeds the limit of 1 PiB (kMaxCapacityBytes)");
  if (h.grain_size != kSeSparseGrainSectors)
    return Status::Unsupported("'" + where + "': seSparse header field grainSize at offset 0x18 is " +
                               std::to_string(h.grain_size) + " sectors; ESXi writes only 8");
  if (h.grain_table_size != kSeSparseGrainTableSectors)
    return Status::Unsupported("'" + where + "': seSparse header field grainTableSize at offset 0x20 is " +
                               std::to_string(h.grain_table_size) + " sectors; ESXi writes only 64");
  if (h.flags != 0)
    return Status::Unsupported("'" + where + "': seSparse header field flags at offset 0x28 is " + hex(h.flags) +
                               "; no flags are known");
  if (h.grain_dir_size == 0 || h.grain_dir_size * kSectorSize > kMaxGrainDirectoryBytes)
    return field_error(where, "seSparse header field grainDirSize", 0x88,
                       "is " + std::to_string(h.grain_dir_size) + " sectors; the limit is " +
                           std::to_string(kMaxGrainDirectoryBytes / kSectorSize) + " (kMaxGrainDirectoryBytes)");
  // The directory must cover the capacity.
  uint64_t per_gde = h.gt_entries() * h.grain_size;
  if (div_round_up(h.capacity, per_gde) > h.gd_entries())
    return field_error(where, "seSparse header field grainDirSize", 0x88, "is too small to cover the capacity");
  return h;
}

Status check_sesparse_volatile_header(std::span<const uint8_t> b, const std::string& where, uint64_t at) {
  if (b.size() < 0x20) return field_error(where, "seSparse volatile header", at, "is truncated");
  if (load_le64(b.data()) != kSeSparseVolatileMagic)
    return field_error(where, "seSparse volatile header magic", at, "is " + hex(load_le64(b.data())) + ", not 0xcafecafe");
  if (b[0x18] != 0)
    return Status::Unsupported("'" + where + "': seSparse volatile header at offset " + hex(at) +
                               " says the journal must be replayed (replayJournal = 1); vdkit does not replay it");
  return Status::Ok();
}

const char* to_string(ExtentKind k) {
  switch (k) {
    case ExtentKind::kSparse:
      return "SPARSE";
    case ExtentKind::kFlat:
      return "FLAT";
    case ExtentKind::kZero:
      return "ZERO";
    case ExtentKind::kVmfs:
      return "VMFS";
    case ExtentKind::kVmfsRaw:
      return "VMFSRAW";
    case ExtentKind::kVmfsRdm:
      return "VMFSRDM";
    case ExtentKind::kVmfsSparse:
      return "VMFSSPARSE";
    case ExtentKind::kSeSparse:
      return "SESPARSE";
  }
  return "?";
}

}  // namespace vdkit::vmdk
