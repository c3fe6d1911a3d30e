// The qcow2 driver's write side (write, zero, trim, flush; clusters appended, copy-on-write) and create_qcow2_overlay.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>

#include "blockcore/base/checked.h"
#include "blockcore/layers/overlay.h"
#include "blockcore/qcow2/qcow2_device.h"

namespace vdkit {
namespace qcow2 {

void Qcow2Device::note_file_end(uint64_t end) {
  uint64_t cur = file_size_.load();
  while (end > cur && !file_size_.compare_exchange_weak(cur, end)) {
  }
  if (data_file_ == file_) {
    cur = data_size_.load();
    while (end > cur && !data_size_.compare_exchange_weak(cur, end)) {
    }
  }
}

Status Qcow2Device::write_header_field(uint64_t offset, const void* bytes, size_t len) {
  return file_->WriteExact(offset, bytes, len);
}

Result<uint64_t> Qcow2Device::ensure_l2(uint64_t l1i, bool allocate) {
  const uint64_t e = l1_[l1i];  // only the writer changes l1_, and we are it
  const uint64_t off = e & kL1OffsetMask;
  if (off) {
    if (!(e & kOflagCopied))
      return Status::Unsupported("L1 entry " + std::to_string(l1i) +
                                 " has no COPIED flag (its L2 table is shared); writing to it is not supported");
    return off;
  }
  if (!allocate) return uint64_t{0};
  const uint64_t cs = h_.cluster_size();
  VDKIT_ASSIGN_OR_RETURN(uint64_t l2, alloc_clusters(1));
  std::vector<uint8_t> zeros(cs, 0);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(l2, zeros.data(), zeros.size()));
  note_file_end(l2 + cs);
  uint8_t b[8];
  store_be64(b, l2 | kOflagCopied);
  std::unique_lock<std::shared_mutex> lk(meta_mu_);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(h_.l1_table_offset + l1i * 8, b, sizeof b));
  l1_[l1i] = l2 | kOflagCopied;
  l2_cache_.put(l2, std::make_shared<const std::vector<uint64_t>>(cs / 8, 0));
  return l2;
}

Status Qcow2Device::set_l2_entries(uint64_t l2off, uint64_t first, const std::vector<uint64_t>& entries,
                                   const std::vector<uint64_t>&) {
  if (entries.empty()) return Status::Ok();
  VDKIT_ASSIGN_OR_RETURN(L2Table old, load_l2(0, l2off));
  auto nt = std::make_shared<std::vector<uint64_t>>(*old);
  std::vector<uint8_t> raw(entries.size() * 8 * words_);
  for (size_t i = 0; i < entries.size(); ++i) (*nt)[(first + i) * words_] = entries[i];
  for (size_t w = 0; w < entries.size() * words_; ++w) store_be64(raw.data() + w * 8, (*nt)[first * words_ + w]);
  std::unique_lock<std::shared_mutex> lk(meta_mu_);
  VDKIT_RETURN_IF_ERROR(file_->WriteExact(l2off + first * words_ * 8, raw.data(), raw.size()));
  l2_cache_.put(l2off, std::move(nt));
  return Status::Ok();
}

Status Qcow2Device::write_locked(uint64_t offset, const uint8_t* data, uint64_t length) {
  const uint64_t cs = h_.cluster_size();
  const uint32_t shift = h_.l1_shift();
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t l1i = pos >> shift;
    const uint64_t span_end = std::min(end, (l1i + 1) << shift);
    VDKIT_ASSIGN_OR_RETURN(uint64_t l2off, ensure_l2(l1i, true));
    VDKIT_ASSIGN_OR_RETURN(L2Table t, load_l2(l1i, l2off));
    const uint64_t first_l2i = (pos >> h_.cluster_bits) & (l2_entries_ - 1);

    struct Plan {
      uint64_t cstart, from, to, entry;
      bool in_place;
    };
    std::vector<Plan> plans;
    uint64_t n_new = 0;
    for (uint64_t c = pos & ~(cs - 1), i = first_l2i; c < span_end; c += cs, ++i) {
      uint64_t e = (*t)[i * words_];
      bool in_place = !(e & (kOflagCompressed | kOflagZero)) && (e & kL2OffsetMask) && (e & kOflagCopied);
      plans.push_back({c, std::max(pos, c), std::min(span_end, c + cs), e, in_place});
      if (!in_place) ++n_new;
    }
    uint64_t base = 0;
    if (n_new) {
      VDKIT_ASSIGN_OR_RETURN(base, alloc_clusters(n_new));
    }

    std::vector<IoRequest> reqs;
    std::deque<std::vector<uint8_t>> bufs;  // copy-on-write clusters (at most the first and last)
    std::vector<uint64_t> new_entries, released;
    uint64_t k = 0;
    for (const Plan& p : plans) {
      const uint8_t* src = data + (p.from - offset);
      if (p.in_place) {
        reqs.push_back(
            {-1, const_cast<uint8_t*>(src), p.to - p.from, (p.entry & kL2OffsetMask) + (p.from - p.cstart), true, 0});
        new_entries.push_back(p.entry);
        continue;
      }
      const uint64_t host = base + (k++) * cs;
      const uint64_t guest_end = std::min(p.cstart + cs, h_.size);
      if (p.from == p.cstart && p.to == p.cstart + cs) {
        reqs.push_back({-1, const_cast<uint8_t*>(src), cs, host, true, 0});
      } else {
        std::vector<uint8_t>& b = bufs.emplace_back(cs, 0);
        if (p.from != p.cstart || p.to < guest_end) {
          // Partial cluster: start from what the guest sees there now (backing, compressed, zero).
          std::vector<Segment> segs;
          VDKIT_RETURN_IF_ERROR(map_range(p.cstart, guest_end - p.cstart, segs));
          VDKIT_RETURN_IF_ERROR(read_segments(segs, p.cstart, b.data()));
        }
        std::memcpy(b.data() + (p.from - p.cstart), src, p.to - p.from);
        reqs.push_back({-1, b.data(), cs, host, true, 0});
      }
      new_entries.push_back(host | kOflagCopied);
      if ((p.entry & kOflagCompressed) || (p.entry & kL2OffsetMask)) released.push_back(p.entry);
    }
    VDKIT_RETURN_IF_ERROR(file_->Submit(reqs));
    if (n_new) {
      note_file_end(base + n_new * cs);
      VDKIT_RETURN_IF_ERROR(set_l2_entries(l2off, first_l2i, new_entries, {}));
      for (uint64_t e : released) VDKIT_RETURN_IF_ERROR(release_entry(e));
    }
    pos = span_end;
  }
  return Status::Ok();
}

Status Qcow2Device::zero_locked(uint64_t offset, uint64_t length) {
  const uint64_t cs = h_.cluster_size();
  const uint32_t shift = h_.l1_shift();
  const uint64_t end = offset + length;
  // What a whole zeroed cluster becomes: the v3 zero flag, or (v2, nothing
  // below) unallocated. v2 over a backing file has to store zeros.
  const bool can_flag = h_.version >= 3 || !backing_;
  const uint64_t flag = h_.version >= 3 ? kOflagZero : 0;
  static const std::vector<uint8_t> kZeros(1 << 20, 0);
  auto write_zeros = [&](uint64_t from, uint64_t to) -> Status {
    for (uint64_t p = from; p < to;) {
      uint64_t n = std::min<uint64_t>(kZeros.size(), to - p);
      VDKIT_RETURN_IF_ERROR(write_locked(p, kZeros.data(), n));
      p += n;
    }
    return Status::Ok();
  };
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t cstart = pos & ~(cs - 1);
    const uint64_t guest_end = std::min(cstart + cs, h_.size);
    const uint64_t to = std::min(end, cstart + cs);
    if (pos != cstart || to < guest_end || !can_flag) {
      // A partial cluster (or v2 over a backing file): store zeros.
      VDKIT_RETURN_IF_ERROR(write_zeros(pos, to));
      pos = to;
      continue;
    }
    // Whole clusters up to the end of this L2 table's span; the disk's short
    // last cluster counts as whole when the range reaches the end of the disk.
    const uint64_t l1i = pos >> shift;
    const uint64_t span_end = std::min((l1i + 1) << shift, end);
    const uint64_t full_end = end == h_.size ? end : end & ~(cs - 1);
    const uint64_t whole_end = std::min(span_end, full_end);
    VDKIT_ASSIGN_OR_RETURN(uint64_t l2off, ensure_l2(l1i, false));
    if (l2off == 0 && !backing_) {
      pos = whole_end;  // nothing allocated, nothing below: already reads as zeros
      continue;
    }
    if (l2off == 0) {
      VDKIT_ASSIGN_OR_RETURN(l2off, ensure_l2(l1i, true));
    }
    VDKIT_ASSIGN_OR_RETURN(L2Table t, load_l2(l1i, l2off));
    const uint64_t first = (pos >> h_.cluster_bits) & (l2_entries_ - 1);
    std::vector<uint64_t> entries, released;
    for (uint64_t c = pos, i = first; c < whole_end; c += cs, ++i) {
      uint64_t e = (*t)[i * words_];
      entries.push_back(flag);
      if ((e & kOflagCompressed) || (e & kL2OffsetMask)) released.push_back(e);
    }
    VDKIT_RETURN_IF_ERROR(set_l2_entries(l2off, first, entries, {}));
    for (uint64_t e : released) VDKIT_RETURN_IF_ERROR(release_entry(e));
    pos = whole_end;
  }
  return Status::Ok();
}

Status Qcow2Device::write(uint64_t offset, std::span<const uint8_t> buf) {
  if (!writable_) return BlockDevice::write(offset, buf);
  VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
  if (buf.empty()) return Status::Ok();
  std::lock_guard<std::mutex> wl(write_mu_);
  return write_locked(offset, buf.data(), buf.size()).Context("writing to '" + file_->path() + "'");
}

Status Qcow2Device::zero(uint64_t offset, uint64_t length) {
  if (!writable_) return BlockDevice::zero(offset, length);
  VDKIT_RETURN_IF_ERROR(check_range(offset, length));
  std::lock_guard<std::mutex> wl(write_mu_);
  return zero_locked(offset, length).Context("zeroing in '" + file_->path() + "'");
}

// Trimmed ranges read as zeros afterwards, which NBD and FUSE both allow.
Status Qcow2Device::trim(uint64_t offset, uint64_t length) {
  if (!writable_) return BlockDevice::trim(offset, length);
  return zero(offset, length);
}

Status Qcow2Device::flush() {
  if (!writable_) return Status::Ok();
  std::lock_guard<std::mutex> wl(write_mu_);
  return file_->Sync();
}

}  // namespace qcow2

namespace fs = std::filesystem;

Result<BlockDevicePtr> create_qcow2_overlay(const std::string& overlay_path, const std::string& source_path,
                                            const std::string& source_format, uint64_t size,
                                            const OpenOptions& options) {
  using namespace qcow2;
  // The source is opened as if the user named it, so its own references follow the usual rules.
  OpenOptions src_opts = options;
  src_opts.writable = false;
  src_opts.format = source_format;
  VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr src, open_image(source_path, src_opts));
  std::string fmt = source_format.empty() ? src->info().format : source_format;

  std::error_code ec;
  fs::path src_abs = fs::weakly_canonical(fs::absolute(source_path), ec);
  fs::path ovl_dir = fs::weakly_canonical(fs::absolute(overlay_path).parent_path(), ec);
  std::string name = src_abs.string();
  fs::path rel = src_abs.lexically_relative(ovl_dir);
  if (!rel.empty() && *rel.begin() != ".." && !rel.is_absolute()) name = rel.string();
  if (name.size() > kMaxBackingNameBytes)
    return Status::Invalid("backing file name '" + name + "' is longer than " + std::to_string(kMaxBackingNameBytes) +
                           " bytes");

  NewImageLayout l;
  l.cluster_bits = 16;
  const uint64_t cs = 1ull << l.cluster_bits;
  l.size = size;
  uint64_t l1 = std::max<uint64_t>(1, l1_entries_for(size, l.cluster_bits + l.cluster_bits - 3));
  if (l1 * 8 > kMaxL1Bytes)
    return Status::Invalid("an overlay of " + std::to_string(size) + " bytes needs an L1 table larger than " +
                           std::to_string(kMaxL1Bytes >> 20) + " MiB");
  l.l1_size = static_cast<uint32_t>(l1);
  const uint64_t l1_clusters = div_round_up(l1 * 8, cs);
  // Cluster 0: header; 1: refcount table; 2: refcount block; 3...: L1 table.
  l.refcount_table_offset = cs;
  l.refcount_table_clusters = 1;
  l.l1_table_offset = 3 * cs;
  l.backing_file = name;
  l.backing_format = fmt;
  std::vector<uint8_t> header = encode_v3_header(l);
  const uint64_t used = 3 + l1_clusters;
  std::vector<uint8_t> meta(2 * cs, 0);
  store_be64(meta.data(), 2 * cs);                               // refcount table entry 0 -> block at cluster 2
  for (uint64_t c = 0; c < used; ++c) meta[cs + 2 * c + 1] = 1;  // 16-bit big-endian refcounts of 1

  VDKIT_ASSIGN_OR_RETURN(std::shared_ptr<File> f, File::Open(overlay_path, File::Mode::kCreate, options.engine));
  auto fail = [&](const Status& st) -> Status {
    f.reset();
    ::unlink(overlay_path.c_str());
    return st.Context("creating overlay '" + overlay_path + "'");
  };
  Status st = f->WriteExact(0, header.data(), header.size());
  if (st.ok()) st = f->WriteExact(cs, meta.data(), meta.size());
  if (st.ok()) st = f->Truncate((3 + l1_clusters) * cs);
  if (st.ok()) st = f->Sync();
  if (!st.ok()) return fail(st);

  OpenContext ctx;
  ctx.options = options;
  ctx.options.writable = true;
  ctx.top_dir = ovl_dir.string();
  ctx.chain = {fs::weakly_canonical(fs::absolute(overlay_path), ec).string()};
  ctx.top = true;
  auto dev = Qcow2Device::Open(f, ctx, std::move(src), source_path);
  if (!dev.ok()) return fail(dev.status());
  return dev;
}

}  // namespace vdkit
