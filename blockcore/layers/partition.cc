// MBR (with extended/logical chains) and GPT (with CRC checks and backup-header fallback) readers, and PartitionView.
#include "blockcore/layers/partition.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <set>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/ondisk_text.h"

namespace vdkit {

namespace {

// Named limits.
constexpr uint64_t kMbrSectorSize = 512;
constexpr int kMaxLogicalPartitions = 128;           // EBRs followed before giving up (Linux stops near 60)
constexpr uint64_t kMaxGptEntryArrayBytes = 1 << 20;  // 8192 entries of 128 bytes; the spec's default is 16 KiB
constexpr uint32_t kMinGptEntrySize = 128;
constexpr uint32_t kMaxGptEntrySize = 4096;
constexpr uint32_t kMinGptHeaderSize = 92;

std::string hex_byte(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v);
  return b;
}

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

// GPT names: UTF-16LE, NUL-terminated or filling the field. Bad surrogates become U+FFFD.
std::string utf16le_name(const uint8_t* p, size_t bytes) { return utf16_to_utf8(p, bytes); }

struct MbrEntry {
  uint8_t status, type;
  uint32_t start, sectors;
};

MbrEntry mbr_entry(const uint8_t* sector, int i) {
  const uint8_t* e = sector + 446 + 16 * i;
  return {e[0], e[4], load_le32(e + 8), load_le32(e + 12)};
}

bool is_extended(uint8_t type) { return type == 0x05 || type == 0x0f || type == 0x85; }

// ---------------------------------------------------------------- GPT

struct GptHeader {
  uint64_t my_lba, alternate_lba, first_usable, last_usable, entries_lba;
  uint32_t num_entries, entry_size, entries_crc;
};

// Reads and checks the GPT header at `lba`; on success the entry array is
// read and checked too. `what` names the header in errors.
Status read_gpt_at(BlockDevice& dev, uint64_t ss, uint64_t lba, const std::string& what, GptHeader& h,
                   std::vector<uint8_t>& entries) {
  auto off = checked_mul(lba, ss);
  if (!off || !range_within(*off, ss, dev.size()))
    return Status::Corrupt(what + " at LBA " + std::to_string(lba) + " lies beyond the end of the disk");
  std::vector<uint8_t> sec(ss);
  VDKIT_RETURN_IF_ERROR(dev.read(*off, sec));
  if (std::memcmp(sec.data(), "EFI PART", 8) != 0)
    return Status::Corrupt(what + " at byte " + std::to_string(*off) + " has no 'EFI PART' signature");
  uint32_t hsize = load_le32(&sec[12]);
  if (hsize < kMinGptHeaderSize || hsize > ss)
    return Status::Corrupt(what + ": header size " + std::to_string(hsize) + " at byte " + std::to_string(*off + 12) +
                           " is outside [92, sector size]");
  uint32_t want_crc = load_le32(&sec[16]);
  std::memset(&sec[16], 0, 4);
  uint32_t got_crc = static_cast<uint32_t>(crc32(0, sec.data(), hsize));
  if (got_crc != want_crc)
    return Status::Corrupt(what + ": header CRC32 at byte " + std::to_string(*off + 16) + " does not match");
  h.my_lba = load_le64(&sec[24]);
  h.alternate_lba = load_le64(&sec[32]);
  h.first_usable = load_le64(&sec[40]);
  h.last_usable = load_le64(&sec[48]);
  h.entries_lba = load_le64(&sec[72]);
  h.num_entries = load_le32(&sec[80]);
  h.entry_size = load_le32(&sec[84]);
  h.entries_crc = load_le32(&sec[88]);
  if (h.my_lba != lba)
    return Status::Corrupt(what + ": MyLBA " + std::to_string(h.my_lba) + " is not its own LBA " + std::to_string(lba));
  if (h.entry_size < kMinGptEntrySize || h.entry_size > kMaxGptEntrySize || !is_power_of_two(h.entry_size))
    return Status::Corrupt(what + ": partition entry size " + std::to_string(h.entry_size) + " at byte " +
                           std::to_string(*off + 84) + " is not a power of two in [128, 4096]");
  uint64_t array_bytes = static_cast<uint64_t>(h.num_entries) * h.entry_size;
  if (array_bytes > kMaxGptEntryArrayBytes)
    return Status::Corrupt(what + ": " + std::to_string(h.num_entries) + " partition entries at byte " +
                           std::to_string(*off + 80) + " exceed the limit of " +
                           std::to_string(kMaxGptEntryArrayBytes) + " bytes of entries");
  uint64_t disk_sectors = dev.size() / ss;
  if (h.first_usable > h.last_usable || h.last_usable >= disk_sectors)
    return Status::Corrupt(what + ": usable LBAs " + std::to_string(h.first_usable) + ".." +
                           std::to_string(h.last_usable) + " do not fit the disk of " + std::to_string(disk_sectors) +
                           " sectors");
  auto eoff = checked_mul(h.entries_lba, ss);
  if (!eoff || !range_within(*eoff, array_bytes, dev.size()))
    return Status::Corrupt(what + ": partition entry array at LBA " + std::to_string(h.entries_lba) +
                           " lies beyond the end of the disk");
  entries.assign(array_bytes, 0);
  VDKIT_RETURN_IF_ERROR(dev.read(*eoff, entries));
  if (static_cast<uint32_t>(crc32(0, entries.data(), static_cast<uInt>(array_bytes))) != h.entries_crc)
    return Status::Corrupt(what + ": partition entry array CRC32 (header byte " + std::to_string(*off + 88) +
                           ") does not match the entries at byte " + std::to_string(*eoff));
  return Status::Ok();
}

Result<std::vector<Partition>> read_gpt(BlockDevice& dev, uint64_t ss, ByteRanges* meta) {
  GptHeader h{};
  std::vector<uint8_t> entries;
  Status primary = read_gpt_at(dev, ss, 1, "primary GPT header", h, entries);
  if (!primary.ok()) {
    // The backup header lives in the disk's last sector.
    uint64_t last = dev.size() / ss - 1;
    Status backup = read_gpt_at(dev, ss, last, "backup GPT header", h, entries);
    if (!backup.ok()) return Status::Corrupt(primary.message() + "; and " + backup.message());
  }
  if (meta) {
    // Everything before the first usable LBA (protective MBR, primary header, primary entries) and everything
    // after the last usable one (backup entries, backup header): read_gpt_at checked both against the disk.
    meta->emplace_back(0, h.first_usable * ss);
    meta->emplace_back((h.last_usable + 1) * ss, dev.size() - (h.last_usable + 1) * ss);
  }
  std::vector<Partition> out;
  for (uint32_t i = 0; i < h.num_entries; ++i) {
    const uint8_t* e = entries.data() + static_cast<size_t>(i) * h.entry_size;
    if (all_zero(e, 16)) continue;  // unused entry
    uint64_t first = load_le64(e + 32), last = load_le64(e + 40);
    std::string where = "GPT entry " + std::to_string(i + 1);
    if (first > last || first < h.first_usable || last > h.last_usable)
      return Status::Corrupt(where + ": LBAs " + std::to_string(first) + ".." + std::to_string(last) +
                             " lie outside the usable LBAs " + std::to_string(h.first_usable) + ".." +
                             std::to_string(h.last_usable));
    Partition p;
    p.number = static_cast<int>(i + 1);
    p.offset = first * ss;  // cannot overflow: last_usable < disk sectors
    p.length = (last - first + 1) * ss;
    p.scheme = "gpt";
    p.type = guid_string(e);
    p.uuid = guid_string(e + 16);
    p.name = utf16le_name(e + 56, std::min<size_t>(72, h.entry_size - 56));
    p.bootable = (load_le64(e + 48) & (1ull << 2)) != 0;
    out.push_back(std::move(p));
  }
  return out;
}

// ---------------------------------------------------------------- MBR

Status check_mbr_range(const BlockDevice& dev, uint64_t start_sector, uint64_t sectors, const std::string& where) {
  uint64_t off = start_sector * kMbrSectorSize, len = sectors * kMbrSectorSize;  // 32-bit values: no overflow
  if (!range_within(off, len, dev.size()))
    return Status::Corrupt(where + ": sectors " + std::to_string(start_sector) + "+" + std::to_string(sectors) +
                           " end beyond the disk (" + std::to_string(dev.size()) + " bytes)");
  return Status::Ok();
}

Status read_logical(BlockDevice& dev, const MbrEntry& ext, uint32_t disk_sig, std::vector<Partition>& out,
                    ByteRanges* meta) {
  const uint64_t ext_start = ext.start, ext_end = static_cast<uint64_t>(ext.start) + ext.sectors;
  std::set<uint64_t> seen;
  uint64_t ebr = ext_start;
  int number = 5;
  for (int count = 0;; ++count) {
    if (count >= kMaxLogicalPartitions)
      return Status::Corrupt("extended partition: more than " + std::to_string(kMaxLogicalPartitions) +
                             " logical partitions (EBR chain too long)");
    if (!seen.insert(ebr).second)
      return Status::Corrupt("extended partition: EBR chain loops back to sector " + std::to_string(ebr));
    if (ebr < ext_start || ebr >= ext_end)
      return Status::Corrupt("extended partition: EBR at sector " + std::to_string(ebr) +
                             " lies outside the extended partition");
    uint8_t sec[kMbrSectorSize];
    VDKIT_RETURN_IF_ERROR(check_mbr_range(dev, ebr, 1, "EBR"));
    VDKIT_RETURN_IF_ERROR(dev.read(ebr * kMbrSectorSize, sec));
    if (meta) meta->emplace_back(ebr * kMbrSectorSize, kMbrSectorSize);
    if (sec[510] != 0x55 || sec[511] != 0xaa)
      return Status::Corrupt("EBR at byte " + std::to_string(ebr * kMbrSectorSize) + " has no 0x55AA signature");
    MbrEntry l = mbr_entry(sec, 0), next = mbr_entry(sec, 1);
    if (l.type != 0 && l.sectors != 0) {
      uint64_t start = ebr + l.start;
      std::string where = "logical partition " + std::to_string(number) + " (EBR at sector " + std::to_string(ebr) + ")";
      if (start < ext_start || start + l.sectors > ext_end)
        return Status::Corrupt(where + ": sectors " + std::to_string(start) + "+" + std::to_string(l.sectors) +
                               " leave the extended partition");
      VDKIT_RETURN_IF_ERROR(check_mbr_range(dev, start, l.sectors, where));
      Partition p;
      p.number = number;
      p.offset = start * kMbrSectorSize;
      p.length = static_cast<uint64_t>(l.sectors) * kMbrSectorSize;
      p.scheme = "mbr";
      p.type = hex_byte(l.type);
      char u[32];
      std::snprintf(u, sizeof u, "%08x-%02x", disk_sig, number);
      p.uuid = u;
      p.bootable = l.status == 0x80;
      out.push_back(std::move(p));
    }
    ++number;  // Linux numbers logical partitions by EBR position
    if (next.type == 0 || next.sectors == 0 || !is_extended(next.type)) break;
    ebr = ext_start + next.start;
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<Partition>> read_partition_table(BlockDevice& dev) { return read_partition_table(dev, nullptr); }

bool is_extended_container(const Partition& p) {
  return p.scheme == "mbr" && (p.type == "0x05" || p.type == "0x0f" || p.type == "0x85");
}

Result<std::vector<Partition>> read_partition_table(BlockDevice& dev, ByteRanges* table_ranges) {
  if (table_ranges) table_ranges->clear();
  std::vector<Partition> out;
  if (dev.size() < kMbrSectorSize) return out;
  uint8_t mbr[kMbrSectorSize];
  VDKIT_RETURN_IF_ERROR(dev.read(0, mbr));
  if (mbr[510] != 0x55 || mbr[511] != 0xaa) {
    // No MBR signature; a GPT disk always has a protective MBR, so there is no table.
    return out;
  }
  MbrEntry e[4];
  bool protective = false;
  for (int i = 0; i < 4; ++i) {
    e[i] = mbr_entry(mbr, i);
    // A boot sector of a file system (FAT, NTFS) also ends in 0x55AA; a real
    // table has only 0x00/0x80 status bytes.
    if (e[i].status != 0 && e[i].status != 0x80) return out;
    if (e[i].type == 0xee) protective = true;
  }
  if (protective) {
    auto gpt = read_gpt(dev, 512, table_ranges);
    if (gpt.ok()) return gpt;
    // 4 KiB-sector disks keep the GPT header at byte 4096.
    if (dev.size() >= 3 * 4096) {
      if (table_ranges) table_ranges->clear();
      auto gpt4k = read_gpt(dev, 4096, table_ranges);
      if (gpt4k.ok()) return gpt4k;
    }
    return gpt.status();
  }
  if (table_ranges) table_ranges->emplace_back(0, kMbrSectorSize);
  uint32_t disk_sig = load_le32(mbr + 440);
  int extended = -1;
  for (int i = 0; i < 4; ++i) {
    if (e[i].type == 0 || e[i].sectors == 0) continue;
    std::string where = "MBR entry " + std::to_string(i + 1) + " (byte " + std::to_string(446 + 16 * i) + ")";
    VDKIT_RETURN_IF_ERROR(check_mbr_range(dev, e[i].start, e[i].sectors, where));
    if (e[i].start == 0) return Status::Corrupt(where + " starts at sector 0, over the MBR itself");
    if (is_extended(e[i].type)) {
      if (extended >= 0) return Status::Corrupt(where + " is a second extended partition");
      extended = i;
    }
    Partition p;
    p.number = i + 1;
    p.offset = static_cast<uint64_t>(e[i].start) * kMbrSectorSize;
    p.length = static_cast<uint64_t>(e[i].sectors) * kMbrSectorSize;
    p.scheme = "mbr";
    p.type = hex_byte(e[i].type);
    char u[32];
    std::snprintf(u, sizeof u, "%08x-%02x", disk_sig, i + 1);
    p.uuid = u;
    p.bootable = e[i].status == 0x80;
    out.push_back(std::move(p));
  }
  if (extended >= 0) VDKIT_RETURN_IF_ERROR(read_logical(dev, e[extended], disk_sig, out, table_ranges));
  return out;
}

namespace {

class PartitionView final : public BlockDevice {
 public:
  PartitionView(std::shared_ptr<BlockDevice> base, uint64_t offset, uint64_t length)
      : base_(std::move(base)), offset_(offset), length_(length) {}

  uint64_t size() const override { return length_; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return base_->read(offset_ + offset, buf);
  }
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    std::vector<Extent> base;
    VDKIT_RETURN_IF_ERROR(base_->extents(offset_ + offset, length, base));
    for (Extent e : base) {
      // Clip to the window in case the base reports a larger run.
      uint64_t s = std::max(e.offset, offset_ + offset), t = std::min(e.offset + e.length, offset_ + offset + length);
      if (s >= t) continue;
      append_extent(out, {s - offset_, t - s, e.type});
    }
    return Status::Ok();
  }
  DeviceCaps caps() const override { return base_->caps(); }
  Status write(uint64_t offset, std::span<const uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    return base_->write(offset_ + offset, buf);
  }
  Status zero(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return base_->zero(offset_ + offset, length);
  }
  Status trim(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return base_->trim(offset_ + offset, length);
  }
  Status flush() override { return base_->flush(); }
  Status prefetch(uint64_t offset, uint64_t length) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    return base_->prefetch(offset_ + offset, length);
  }
  const ImageInfo& info() const override { return base_->info(); }

 private:
  std::shared_ptr<BlockDevice> base_;
  uint64_t offset_, length_;
};

}  // namespace

BlockDevicePtr make_partition_view(std::shared_ptr<BlockDevice> base, uint64_t offset, uint64_t length) {
  // A window that does not fit is clipped to the base (read_partition_table never makes one).
  uint64_t size = base->size();
  if (offset > size) offset = size;
  if (length > size - offset) length = size - offset;
  return std::make_unique<PartitionView>(std::move(base), offset, length);
}

}  // namespace vdkit
