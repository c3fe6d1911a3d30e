// qcow2 refcounts for the write side: the refcount table and blocks, growing them, and cluster allocation.
#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/qcow2/qcow2_device.h"

namespace vdkit::qcow2 {

namespace {

// Refcount blocks kept in memory by the writer; the cache is dropped when full.
constexpr size_t kMaxCachedRefblocks = 64;

// Entry i of a refcount block of 2^order-bit entries. Sub-byte entries fill
// each byte from its least significant bit, as QEMU stores them.
uint64_t get_entry(const uint8_t* b, uint32_t order, uint64_t i) {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      uint32_t bits = 1u << order, per = 8 / bits;
      return (b[i / per] >> ((i % per) * bits)) & ((1u << bits) - 1);
    }
    case 3:
      return b[i];
    case 4:
      return load_be16(b + 2 * i);
    case 5:
      return load_be32(b + 4 * i);
    default:
      return load_be64(b + 8 * i);
  }
}

void set_entry(uint8_t* b, uint32_t order, uint64_t i, uint64_t v) {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      uint32_t bits = 1u << order, per = 8 / bits, shift = static_cast<uint32_t>((i % per) * bits);
      uint8_t mask = static_cast<uint8_t>(((1u << bits) - 1) << shift);
      b[i / per] = static_cast<uint8_t>((b[i / per] & ~mask) | ((v << shift) & mask));
      break;
    }
    case 3:
      b[i] = static_cast<uint8_t>(v);
      break;
    case 4:
      store_be16(b + 2 * i, static_cast<uint16_t>(v));
      break;
    case 5:
      store_be32(b + 4 * i, static_cast<uint32_t>(v));
      break;
    default:
      store_be64(b + 8 * i, v);
      break;
  }
}

// The byte range [first, last) holding entries [i, j).
std::pair<uint64_t, uint64_t> entry_bytes(uint32_t order, uint64_t i, uint64_t j) {
  if (order < 3) {
    uint64_t per = 8 >> order;
    return {i / per, (j - 1) / per + 1};
  }
  uint64_t w = 1ull << (order - 3);
  return {i * w, j * w};
}

}  // namespace

Status Qcow2Device::load_refcount_table() {
  const uint64_t cs = h_.cluster_size();
  const uint64_t bytes = uint64_t{h_.refcount_table_clusters} * cs;  // bounded by read_header
  if (!range_within(h_.refcount_table_offset, bytes, file_size_.load()))
    return Status::Corrupt("header field refcount_table_offset (offset 48): the refcount table at " +
                           hex(h_.refcount_table_offset) + " (" + std::to_string(bytes) +
                           " bytes) lies past the end of the file");
  std::vector<uint8_t> raw(bytes);
  if (bytes) VDKIT_RETURN_IF_ERROR(file_->ReadExact(h_.refcount_table_offset, raw.data(), raw.size()));
  reftable_.resize(bytes / 8);
  for (uint64_t i = 0; i < reftable_.size(); ++i) reftable_[i] = load_be64(raw.data() + i * 8) & kRefTableOffsetMask;
  uint64_t fsize = file_size_.load();
  next_free_ = fsize + (cs - fsize % cs) % cs;
  // Bits we do not maintain (dirty-bitmap consistency) must be cleared before
  // the first write, so QEMU knows those structures are stale.
  if (h_.version >= 3 && h_.autoclear) {
    uint8_t zero[8] = {};
    VDKIT_RETURN_IF_ERROR(write_header_field(kOffAutoclear, zero, sizeof zero));
    h_.autoclear = 0;
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>*> Qcow2Device::refblock(uint64_t bi) {
  auto it = refblocks_.find(bi);
  if (it != refblocks_.end()) return &it->second;
  const uint64_t cs = h_.cluster_size();
  uint64_t off = bi < reftable_.size() ? reftable_[bi] : 0;
  if (off == 0) return Status::Corrupt("refcount table entry " + std::to_string(bi) + " is empty");
  if (off % cs)
    return Status::Corrupt("refcount table entry " + std::to_string(bi) + ": refcount block offset " + hex(off) +
                           " is not aligned to the cluster size");
  if (!range_within(off, cs, file_size_.load()))
    return Status::Corrupt("refcount table entry " + std::to_string(bi) + ": refcount block at " + hex(off) +
                           " lies past the end of the file");
  std::vector<uint8_t> b(cs);
  VDKIT_RETURN_IF_ERROR(file_->ReadExact(off, b.data(), b.size()));
  if (refblocks_.size() >= kMaxCachedRefblocks) refblocks_.clear();
  return &(refblocks_[bi] = std::move(b));
}

Status Qcow2Device::ensure_refblock(uint64_t bi) {
  if (bi >= reftable_.size()) VDKIT_RETURN_IF_ERROR(grow_refcount_table(bi + 1));
  if (reftable_[bi] != 0) return Status::Ok();
  const uint64_t cs = h_.cluster_size();
  uint64_t off = next_free_;
  next_free_ += cs;
  std::vector<uint8_t> zeros(cs, 0);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(off, zeros.data(), zeros.size()));
  note_file_end(off + cs);
  if (refblocks_.size() >= kMaxCachedRefblocks) refblocks_.clear();
  refblocks_[bi] = std::move(zeros);
  uint8_t e[8];
  store_be64(e, off);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(h_.refcount_table_offset + bi * 8, e, sizeof e));
  reftable_[bi] = off;
  // The new block counts itself (it may live in the range it covers, or in another block).
  return adjust_refcounts(off / cs, 1, +1);
}

Status Qcow2Device::grow_refcount_table(uint64_t min_entries) {
  const uint64_t cs = h_.cluster_size();
  const uint64_t per_cluster = cs / 8;
  uint64_t want = std::max<uint64_t>(min_entries, reftable_.size()) * 2;
  uint64_t entries = std::max<uint64_t>(per_cluster, div_round_up(want, per_cluster) * per_cluster);
  uint64_t bytes = entries * 8;
  if (bytes > kMaxRefcountTableBytes)
    return Status::Error(EFBIG, "growing the refcount table to " + std::to_string(bytes) +
                                    " bytes would pass the limit of " + std::to_string(kMaxRefcountTableBytes >> 20) +
                                    " MiB");
  uint64_t new_off = next_free_;
  next_free_ += bytes;
  std::vector<uint8_t> raw(bytes, 0);
  for (uint64_t i = 0; i < reftable_.size(); ++i) store_be64(raw.data() + i * 8, reftable_[i]);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(new_off, raw.data(), raw.size()));
  note_file_end(new_off + bytes);
  uint64_t old_off = h_.refcount_table_offset, old_clusters = h_.refcount_table_clusters;
  uint8_t f[12];
  store_be64(f, new_off);
  store_be32(f + 8, static_cast<uint32_t>(bytes / cs));
  VDKIT_RETURN_IF_ERROR(file_->Sync());  // the new table is durable before the header points at it
  VDKIT_RETURN_IF_ERROR(write_header_field(kOffRefcountTableOffset, f, sizeof f));
  reftable_.resize(entries, 0);
  h_.refcount_table_offset = new_off;
  h_.refcount_table_clusters = static_cast<uint32_t>(bytes / cs);
  VDKIT_RETURN_IF_ERROR(adjust_refcounts(new_off / cs, bytes / cs, +1));
  if (old_clusters) VDKIT_RETURN_IF_ERROR(adjust_refcounts(old_off / cs, old_clusters, -1));
  return Status::Ok();
}

Status Qcow2Device::adjust_refcounts(uint64_t first, uint64_t count, int delta) {
  const uint64_t cs = h_.cluster_size();
  const uint32_t order = h_.refcount_order;
  const uint64_t per_block = cs * 8 >> order;
  const uint64_t max = order == 6 ? ~uint64_t{0} : (1ull << (1u << order)) - 1;
  for (uint64_t ci = first; ci < first + count;) {
    const uint64_t bi = ci / per_block;
    VDKIT_RETURN_IF_ERROR(ensure_refblock(bi));
    VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> * blk, refblock(bi));
    const uint64_t i0 = ci % per_block;
    const uint64_t n = std::min(first + count, (bi + 1) * per_block) - ci;
    for (uint64_t i = i0; i < i0 + n; ++i) {
      uint64_t v = get_entry(blk->data(), order, i);
      if ((delta < 0 && v < static_cast<uint64_t>(-delta)) || (delta > 0 && max - v < static_cast<uint64_t>(delta)))
        return Status::Corrupt("refcount of the cluster at host offset " + hex((bi * per_block + i) * cs) + " is " +
                               std::to_string(v) + "; adding " + std::to_string(delta) + " leaves its range");
      set_entry(blk->data(), order, i, v + delta);
    }
    auto [lo, hi] = entry_bytes(order, i0, i0 + n);
    VDKIT_RETURN_IF_ERROR(file_->WriteExact(reftable_[bi] + lo, blk->data() + lo, hi - lo));
    ci += n;
  }
  return Status::Ok();
}

Result<uint64_t> Qcow2Device::alloc_clusters(uint64_t count) {
  const uint64_t cs = h_.cluster_size();
  uint64_t off = next_free_;
  auto end = checked_add(off, count * cs);
  if (!end || *end > (kL2OffsetMask | 0x1ff))
    return Status::Error(EFBIG, "the image file would grow past the largest host offset qcow2 can hold");
  next_free_ = *end;
  VDKIT_RETURN_IF_ERROR(adjust_refcounts(off / cs, count, +1));
  return off;
}

Status Qcow2Device::release_entry(uint64_t e) {
  const uint64_t cs = h_.cluster_size();
  if (e & kOflagCompressed) {
    const uint32_t shift = 62 - (h_.cluster_bits - 8);
    const uint64_t coffset = e & ((1ull << shift) - 1);
    const uint64_t sectors = ((e >> shift) & ((1ull << (h_.cluster_bits - 8)) - 1)) + 1;
    const uint64_t start = coffset & ~uint64_t{511};
    const uint64_t last = (start + sectors * 512 - 1) / cs;
    return adjust_refcounts(start / cs, last - start / cs + 1, -1);
  }
  uint64_t host = e & kL2OffsetMask;
  if (host == 0) return Status::Ok();
  return adjust_refcounts(host / cs, 1, -1);
}

}  // namespace vdkit::qcow2
