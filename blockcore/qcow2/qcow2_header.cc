// qcow2 header parsing and validation (fields, extensions, backing name) and the header writer for new images.
#include <algorithm>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/qcow2/qcow2_format.h"

namespace vdkit::qcow2 {

namespace {

std::string field(const char* name, uint64_t offset) {
  return std::string("header field ") + name + " (offset " + std::to_string(offset) + ")";
}

const char* spec_incompatible_name(unsigned bit) {
  switch (bit) {
    case 0:
      return "dirty bit";
    case 1:
      return "corrupt bit";
    case 2:
      return "external data file";
    case 3:
      return "compression type";
    case 4:
      return "extended L2 entries";
  }
  return nullptr;
}

// Header extensions live between the fixed header and the backing file name
// (or the end of the first cluster). Missing bytes past end of file read as zeros, as in QEMU.
Status read_extensions(const std::vector<uint8_t>& first, uint64_t start, uint64_t end, Header& h) {
  uint64_t off = start;
  bool saw_encryption = false, saw_data_file = false;
  for (uint32_t count = 0; off < end; ++count) {
    if (count >= kMaxHeaderExtensions)
      return Status::Corrupt("more than " + std::to_string(kMaxHeaderExtensions) + " header extensions");
    if (end - off < 8) return Status::Corrupt("header extension at offset " + std::to_string(off) + " is truncated");
    uint8_t hdr[8] = {};
    for (int i = 0; i < 8; ++i) hdr[i] = off + i < first.size() ? first[off + i] : 0;
    uint32_t type = load_be32(hdr), len = load_be32(hdr + 4);
    uint64_t data = off + 8;
    if (len > end - data)
      return Status::Corrupt("header extension " + hex(type) + " at offset " + std::to_string(off) + " is " +
                             std::to_string(len) + " bytes, past the end of the extension area (" +
                             std::to_string(end) + ")");
    if (type == kExtEnd) break;
    std::string payload;
    for (uint64_t i = 0; i < len; ++i)
      payload.push_back(data + i < first.size() ? static_cast<char>(first[data + i]) : 0);
    switch (type) {
      case kExtBackingFormat:
        if (len > kMaxBackingFormatBytes)
          return Status::Corrupt("backing-format header extension at offset " + std::to_string(off) + " is " +
                                 std::to_string(len) + " bytes; the limit is " +
                                 std::to_string(kMaxBackingFormatBytes));
        h.backing_format = payload.substr(0, payload.find('\0'));
        break;
      case kExtDataFile:
        if (len > kMaxDataFileNameBytes)
          return Status::Corrupt("data-file header extension at offset " + std::to_string(off) + " is " +
                                 std::to_string(len) + " bytes; the limit is " + std::to_string(kMaxDataFileNameBytes));
        h.data_file = payload.substr(0, payload.find('\0'));
        saw_data_file = true;
        break;
      case kExtFeatureNames:
        for (uint64_t i = 0; i + 48 <= len; i += 48) {
          FeatureName f;
          f.type = static_cast<uint8_t>(payload[i]);
          f.bit = static_cast<uint8_t>(payload[i + 1]);
          std::string name = payload.substr(i + 2, 46);
          f.name = name.substr(0, name.find('\0'));
          h.feature_names.push_back(std::move(f));
        }
        break;
      case kExtEncryption:
        saw_encryption = true;
        break;
      default:
        break;  // bitmaps and unknown extensions do not change how the active layer reads
    }
    off = data + ((uint64_t{len} + 7) & ~uint64_t{7});
  }
  if (saw_encryption && h.crypt_method == 0)
    return Status::Unsupported(
        "the image has a full-disk-encryption header extension; encrypted images are not supported");
  if (saw_data_file && !h.has_data_file())
    return Status::Corrupt("a data-file header extension is present but the external data file feature bit is not set");
  return Status::Ok();
}

}  // namespace

std::string incompatible_feature_name(const Header& h, unsigned bit) {
  for (const auto& f : h.feature_names)
    if (f.type == 0 && f.bit == bit && !f.name.empty()) return f.name;
  if (const char* n = spec_incompatible_name(bit)) return n;
  return "unknown incompatible feature bit " + std::to_string(bit);
}

Result<Header> read_header(const File& file, uint64_t file_size) {
  uint8_t b[112] = {};
  VDKIT_ASSIGN_OR_RETURN(size_t got, file.ReadSome(0, b, sizeof b));
  if (got < kV2HeaderLength)
    return Status::Corrupt("file is " + std::to_string(got) + " bytes, too short for a qcow2 header (at least " +
                           std::to_string(kV2HeaderLength) + ")");
  if (load_be32(b) != kMagic) return Status::Corrupt("not a qcow2 image (bad magic)");
  Header h;
  h.version = load_be32(b + kOffVersion);
  if (h.version != 2 && h.version != 3)
    return Status::Unsupported(field("version", kOffVersion) + " is " + std::to_string(h.version) +
                               "; vdkit reads qcow2 versions 2 and 3");
  h.backing_file_offset = load_be64(b + kOffBackingFileOffset);
  h.backing_file_size = load_be32(b + kOffBackingFileSize);
  h.cluster_bits = load_be32(b + kOffClusterBits);
  h.size = load_be64(b + kOffSize);
  h.crypt_method = load_be32(b + kOffCryptMethod);
  h.l1_size = load_be32(b + kOffL1Size);
  h.l1_table_offset = load_be64(b + kOffL1TableOffset);
  h.refcount_table_offset = load_be64(b + kOffRefcountTableOffset);
  h.refcount_table_clusters = load_be32(b + kOffRefcountTableClusters);
  h.nb_snapshots = load_be32(b + kOffNbSnapshots);
  h.snapshots_offset = load_be64(b + kOffSnapshotsOffset);

  if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits)
    return Status::Corrupt(field("cluster_bits", kOffClusterBits) + " is " + std::to_string(h.cluster_bits) +
                           "; must be " + std::to_string(kMinClusterBits) + " to " + std::to_string(kMaxClusterBits) +
                           " (512 B to 2 MiB clusters)");
  const uint64_t cs = h.cluster_size();

  if (h.version == 3) {
    if (got < kV3MinHeaderLength)
      return Status::Corrupt("file is " + std::to_string(got) + " bytes, too short for a version 3 qcow2 header (" +
                             std::to_string(kV3MinHeaderLength) + ")");
    h.incompatible = load_be64(b + kOffIncompatible);
    h.compatible = load_be64(b + kOffCompatible);
    h.autoclear = load_be64(b + kOffAutoclear);
    h.refcount_order = load_be32(b + kOffRefcountOrder);
    h.header_length = load_be32(b + kOffHeaderLength);
    if (h.header_length < kV3MinHeaderLength)
      return Status::Corrupt(field("header_length", kOffHeaderLength) + " is " + std::to_string(h.header_length) +
                             "; version 3 needs at least " + std::to_string(kV3MinHeaderLength));
    if (h.header_length > cs)
      return Status::Corrupt(field("header_length", kOffHeaderLength) + " is " + std::to_string(h.header_length) +
                             ", more than the cluster size (" + std::to_string(cs) + ")");
    if (h.header_length > kOffCompressionType) {
      if (got <= kOffCompressionType)
        return Status::Corrupt(field("header_length", kOffHeaderLength) + " is " + std::to_string(h.header_length) +
                               " but the file ends at " + std::to_string(got));
      h.compression_type = b[kOffCompressionType];
    }
  }
  if (h.refcount_order > kMaxRefcountOrder)
    return Status::Corrupt(field("refcount_order", kOffRefcountOrder) + " is " + std::to_string(h.refcount_order) +
                           "; refcounts may be at most 64 bits (order " + std::to_string(kMaxRefcountOrder) + ")");

  // The first cluster holds the extensions and the backing name.
  std::vector<uint8_t> first(std::min<uint64_t>(cs, file_size));
  if (!first.empty()) VDKIT_RETURN_IF_ERROR(file.ReadSome(0, first.data(), first.size()).status());

  if (h.backing_file_offset != 0) {
    if (h.backing_file_offset > cs)
      return Status::Corrupt(field("backing_file_offset", kOffBackingFileOffset) + " is " +
                             std::to_string(h.backing_file_offset) + ", outside the first cluster (" +
                             std::to_string(cs) + " bytes)");
    if (h.backing_file_size > std::min<uint64_t>(kMaxBackingNameBytes, cs - h.backing_file_offset))
      return Status::Corrupt(field("backing_file_size", kOffBackingFileSize) + " is " +
                             std::to_string(h.backing_file_size) + "; a backing file name may be at most " +
                             std::to_string(kMaxBackingNameBytes) + " bytes and must end inside the first cluster");
    if (h.backing_file_offset + h.backing_file_size > first.size())
      return Status::Corrupt("backing file name at offset " + std::to_string(h.backing_file_offset) + " (" +
                             std::to_string(h.backing_file_size) + " bytes) lies past the end of the file");
    h.backing_file.assign(reinterpret_cast<const char*>(first.data() + h.backing_file_offset), h.backing_file_size);
  }

  uint64_t ext_start = h.version == 3 ? h.header_length : kV2HeaderLength;
  uint64_t ext_end = h.backing_file_offset ? h.backing_file_offset : cs;
  if (ext_start < ext_end) VDKIT_RETURN_IF_ERROR(read_extensions(first, ext_start, ext_end, h));

  if (h.crypt_method != 0)
    return Status::Unsupported(field("crypt_method", kOffCryptMethod) + " is " + std::to_string(h.crypt_method) +
                               (h.crypt_method == 1   ? " (AES)"
                                : h.crypt_method == 2 ? " (LUKS)"
                                                      : "") +
                               ": encrypted qcow2 images are not supported");
  uint64_t unknown = h.incompatible & ~kIncompatKnown;
  if (unknown) {
    std::string names;
    for (unsigned bit = 0; bit < 64; ++bit)
      if (unknown & (1ull << bit)) names += (names.empty() ? "" : ", ") + incompatible_feature_name(h, bit);
    return Status::Unsupported(field("incompatible_features", kOffIncompatible) + " is " + hex(h.incompatible) +
                               ": unsupported incompatible feature(s): " + names);
  }
  if (h.compression_type != kCompressionZlib && h.compression_type != kCompressionZstd)
    return Status::Unsupported(field("compression_type", kOffCompressionType) + " is " +
                               std::to_string(h.compression_type) + "; known types are 0 (zlib) and 1 (zstd)");
  if ((h.compression_type != kCompressionZlib) != bool(h.incompatible & kIncompatCompression))
    return Status::Corrupt(field("compression_type", kOffCompressionType) + " is " +
                           std::to_string(h.compression_type) +
                           " but the compression-type incompatible feature bit is " +
                           (h.incompatible & kIncompatCompression ? "set" : "clear"));
  if (h.extended_l2() && h.cluster_bits < 14)
    return Status::Corrupt("extended L2 entries need clusters of at least 16 KiB; " +
                           field("cluster_bits", kOffClusterBits) + " is " + std::to_string(h.cluster_bits));
  if (h.has_data_file() && h.data_file.empty())
    return Status::Corrupt("the external data file feature bit is set but no data-file header extension names it");

  // L1 table.
  if (uint64_t{h.l1_size} * 8 > kMaxL1Bytes)
    return Status::Corrupt(field("l1_size", kOffL1Size) + " is " + std::to_string(h.l1_size) + " entries (" +
                           std::to_string(uint64_t{h.l1_size} * 8) + " bytes), more than the limit of " +
                           std::to_string(kMaxL1Bytes >> 20) + " MiB");
  uint64_t need = l1_entries_for(h.size, h.l1_shift());
  if (need > h.l1_size)
    return Status::Corrupt(field("l1_size", kOffL1Size) + " is " + std::to_string(h.l1_size) + " entries; size " +
                           std::to_string(h.size) + " needs " + std::to_string(need));
  if (h.l1_size) {
    if (h.l1_table_offset % cs)
      return Status::Corrupt(field("l1_table_offset", kOffL1TableOffset) + " is " + hex(h.l1_table_offset) +
                             ", not aligned to the cluster size (" + std::to_string(cs) + ")");
    if (!range_within(h.l1_table_offset, uint64_t{h.l1_size} * 8, file_size))
      return Status::Corrupt(field("l1_table_offset", kOffL1TableOffset) + ": the L1 table at " +
                             hex(h.l1_table_offset) + " (" + std::to_string(uint64_t{h.l1_size} * 8) +
                             " bytes) lies past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  // Refcount table (read only when writing, but checked always, as QEMU does).
  if (uint64_t{h.refcount_table_clusters} * cs > kMaxRefcountTableBytes)
    return Status::Corrupt(field("refcount_table_clusters", kOffRefcountTableClusters) + " is " +
                           std::to_string(h.refcount_table_clusters) + ": a table of " +
                           std::to_string(uint64_t{h.refcount_table_clusters} * cs) +
                           " bytes is more than the limit of " + std::to_string(kMaxRefcountTableBytes >> 20) + " MiB");
  if (h.refcount_table_offset % cs)
    return Status::Corrupt(field("refcount_table_offset", kOffRefcountTableOffset) + " is " +
                           hex(h.refcount_table_offset) + ", not aligned to the cluster size (" + std::to_string(cs) +
                           ")");
  // Snapshots are not read (the active layer is), but the fields are checked.
  if (h.nb_snapshots > kMaxSnapshots)
    return Status::Corrupt(field("nb_snapshots", kOffNbSnapshots) + " is " + std::to_string(h.nb_snapshots) +
                           "; the limit is " + std::to_string(kMaxSnapshots));
  if (h.nb_snapshots && h.snapshots_offset % cs)
    return Status::Corrupt(field("snapshots_offset", kOffSnapshotsOffset) + " is " + hex(h.snapshots_offset) +
                           ", not aligned to the cluster size (" + std::to_string(cs) + ")");
  return h;
}

std::vector<uint8_t> encode_v3_header(const NewImageLayout& l) {
  const uint64_t cs = 1ull << l.cluster_bits;
  std::vector<uint8_t> c(cs, 0);
  uint8_t* b = c.data();
  store_be32(b, kMagic);
  store_be32(b + kOffVersion, 3);
  store_be32(b + kOffClusterBits, l.cluster_bits);
  store_be64(b + kOffSize, l.size);
  store_be32(b + kOffL1Size, l.l1_size);
  store_be64(b + kOffL1TableOffset, l.l1_table_offset);
  store_be64(b + kOffRefcountTableOffset, l.refcount_table_offset);
  store_be32(b + kOffRefcountTableClusters, l.refcount_table_clusters);
  if (l.zstd) {
    store_be64(b + kOffIncompatible, kIncompatCompression);
    b[kOffCompressionType] = 1;
  }
  store_be32(b + kOffRefcountOrder, 4);
  const uint32_t header_length = 112;  // 104 + compression type, padded to 8
  store_be32(b + kOffHeaderLength, header_length);
  uint64_t off = header_length;
  if (!l.backing_format.empty()) {
    store_be32(b + off, kExtBackingFormat);
    store_be32(b + off + 4, static_cast<uint32_t>(l.backing_format.size()));
    std::memcpy(b + off + 8, l.backing_format.data(), l.backing_format.size());
    off += 8 + ((l.backing_format.size() + 7) & ~size_t{7});
  }
  store_be32(b + off, kExtEnd);
  store_be32(b + off + 4, 0);
  off += 8;
  if (!l.backing_file.empty()) {
    store_be64(b + kOffBackingFileOffset, off);
    store_be32(b + kOffBackingFileSize, static_cast<uint32_t>(l.backing_file.size()));
    std::memcpy(b + off, l.backing_file.data(), l.backing_file.size());
  }
  return c;
}

}  // namespace vdkit::qcow2
