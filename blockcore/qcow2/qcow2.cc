// The qcow2 driver's open and read side: tables, guest-to-host mapping, parallel inflation, extents and info.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/base/scratch.h"
#include "blockcore/base/thread_pool.h"
#include "blockcore/qcow2/qcow2_device.h"

namespace vdkit {
namespace qcow2 {

namespace {

void push_segment(std::vector<Qcow2Device::Segment>& out, const Qcow2Device::Segment& s);

}  // namespace

Qcow2Device::Qcow2Device(std::shared_ptr<File> file, Header h, const OpenContext& ctx)
    : h_(std::move(h)),
      file_(std::move(file)),
      l2_cache_(std::max<uint64_t>(
          std::min<uint64_t>(kMaxL2CacheBytes, l1_entries_for(h_.size, h_.l1_shift()) * h_.cluster_size()),
          16 * h_.cluster_size())),
      grain_cache_(ctx.options.cache_bytes) {
  codec_ = h_.compression_type == kCompressionZstd ? Codec::kZstd : Codec::kDeflate;
  words_ = h_.extended_l2() ? 2 : 1;
  l2_entries_ = 1u << h_.l2_bits();
}

Status Qcow2Device::open_tables() {
  l1_.resize(h_.l1_size);
  if (h_.l1_size) {
    std::vector<uint8_t> raw(uint64_t{h_.l1_size} * 8);
    VDKIT_RETURN_IF_ERROR(file_->ReadExact(h_.l1_table_offset, raw.data(), raw.size()));
    for (uint32_t i = 0; i < h_.l1_size; ++i) l1_[i] = load_be64(raw.data() + uint64_t{i} * 8);
  }
  return Status::Ok();
}

Result<L2Table> Qcow2Device::load_l2(uint64_t l1_index, uint64_t l2_offset) {
  const uint64_t cs = h_.cluster_size();
  if (l2_offset % cs)
    return Status::Corrupt("L1 entry " + std::to_string(l1_index) + ": L2 table offset " + hex(l2_offset) +
                           " is not aligned to the cluster size (" + std::to_string(cs) + ")");
  if (!range_within(l2_offset, cs, file_size_.load()))
    return Status::Corrupt("L1 entry " + std::to_string(l1_index) + ": L2 table at " + hex(l2_offset) +
                           " lies past the end of the file (" + std::to_string(file_size_.load()) + " bytes)");
  if (L2Table t = l2_cache_.get(l2_offset)) return t;
  std::vector<uint8_t> raw(cs);
  VDKIT_RETURN_IF_ERROR(file_->ReadExact(l2_offset, raw.data(), raw.size()));
  auto table = std::make_shared<std::vector<uint64_t>>(cs / 8);
  for (uint64_t i = 0; i < cs / 8; ++i) (*table)[i] = load_be64(raw.data() + i * 8);
  L2Table t = std::move(table);
  l2_cache_.put(l2_offset, t);
  return t;
}

namespace {

void push_segment(std::vector<Qcow2Device::Segment>& out, const Qcow2Device::Segment& s) {
  using K = decltype(s.kind);
  if (s.len == 0) return;
  if (!out.empty()) {
    auto& last = out.back();
    if (last.kind == s.kind && last.guest + last.len == s.guest && s.kind != K::kCompressed &&
        (s.kind != K::kNormal || last.host + last.len == s.host)) {
      last.len += s.len;
      return;
    }
  }
  out.push_back(s);
}

}  // namespace

Status Qcow2Device::map_cluster(uint64_t l2_offset, uint64_t l2_index, uint64_t e, uint64_t bitmap, uint64_t cstart,
                                uint64_t from, uint64_t to, std::vector<Segment>& out) {
  const uint64_t cs = h_.cluster_size();
  auto where = [&] {
    return "L2 table at " + hex(l2_offset) + ", entry " + std::to_string(l2_index) + " (guest offset " +
           std::to_string(cstart) + ")";
  };
  if (e & kOflagCompressed) {
    if (h_.has_data_file())
      return Status::Corrupt(where() + ": compressed cluster in an image with an external data file");
    const uint32_t shift = 62 - (h_.cluster_bits - 8);
    const uint64_t coffset = e & ((1ull << shift) - 1);
    const uint64_t sectors = ((e >> shift) & ((1ull << (h_.cluster_bits - 8)) - 1)) + 1;
    Segment s{from, to - from, Kind::kCompressed, coffset, sectors * 512 - (coffset & 511), cstart};
    push_segment(out, s);
    return Status::Ok();
  }
  const uint64_t host = e & kL2OffsetMask;
  const bool allocated = host != 0 || (h_.has_data_file() && (e & kOflagCopied));
  if (allocated && host % cs)
    return Status::Corrupt(where() + ": host cluster offset " + hex(host) + " is not aligned to the cluster size");
  if (!h_.extended_l2()) {
    if (e & kOflagZero) {
      if (h_.version < 3) return Status::Corrupt(where() + ": zero-cluster flag in a version 2 image");
      push_segment(out, {from, to - from, Kind::kZero});
    } else if (!allocated) {
      push_segment(out, {from, to - from, Kind::kUnalloc});
    } else {
      push_segment(out, {from, to - from, Kind::kNormal, host + (from - cstart)});
    }
    return Status::Ok();
  }
  const uint64_t sc_size = cs / kSubclustersPerCluster;
  const uint32_t alloc = static_cast<uint32_t>(bitmap), zero = static_cast<uint32_t>(bitmap >> 32);
  for (uint64_t pos = from; pos < to;) {
    uint32_t sc = static_cast<uint32_t>((pos - cstart) / sc_size);
    uint64_t sc_end = std::min(to, cstart + (uint64_t{sc} + 1) * sc_size);
    bool a = alloc & (1u << sc), z = zero & (1u << sc);
    if (a && z)
      return Status::Corrupt(where() + ": subcluster " + std::to_string(sc) +
                             " is marked both allocated and zero in the extended L2 bitmap");
    if (a && !allocated)
      return Status::Corrupt(where() + ": subcluster " + std::to_string(sc) +
                             " is marked allocated but the cluster has no host offset");
    if (a)
      push_segment(out, {pos, sc_end - pos, Kind::kNormal, host + (pos - cstart)});
    else if (z)
      push_segment(out, {pos, sc_end - pos, Kind::kZero});
    else
      push_segment(out, {pos, sc_end - pos, Kind::kUnalloc});
    pos = sc_end;
  }
  return Status::Ok();
}

Status Qcow2Device::map_range(uint64_t offset, uint64_t length, std::vector<Segment>& out) {
  const uint64_t end = offset + length;
  const uint32_t shift = h_.l1_shift();
  const uint64_t cs = h_.cluster_size();
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t l1i = pos >> shift;
    const uint64_t span_end = std::min(end, (l1i + 1) << shift);
    const uint64_t l2off = l1i < l1_.size() ? (l1_[l1i] & kL1OffsetMask) : 0;
    if (l2off == 0) {
      push_segment(out, {pos, span_end - pos, Kind::kUnalloc});
      pos = span_end;
      continue;
    }
    VDKIT_ASSIGN_OR_RETURN(L2Table t, load_l2(l1i, l2off));
    while (pos < span_end) {
      const uint64_t cstart = pos & ~(cs - 1);
      const uint64_t cend = std::min(span_end, cstart + cs);
      const uint64_t l2i = (pos >> h_.cluster_bits) & (l2_entries_ - 1);
      const uint64_t e = (*t)[l2i * words_];
      const uint64_t bitmap = words_ == 2 ? (*t)[l2i * 2 + 1] : 0;
      VDKIT_RETURN_IF_ERROR(map_cluster(l2off, l2i, e, bitmap, cstart, pos, cend, out));
      pos = cend;
    }
  }
  return Status::Ok();
}

Status Qcow2Device::read_backing(uint64_t offset, uint64_t length, uint8_t* dst) {
  uint64_t n = backing_ && offset < backing_size_ ? std::min(length, backing_size_ - offset) : 0;
  if (n) VDKIT_RETURN_IF_ERROR(backing_->read(offset, std::span<uint8_t>(dst, n)));
  if (n < length) std::memset(dst + n, 0, length - n);
  return Status::Ok();
}

Status Qcow2Device::read_compressed(const std::vector<const Segment*>& segs, uint64_t base, uint8_t* dst) {
  const uint64_t cs = h_.cluster_size();
  const uint64_t fsize = file_size_.load();
  // One job per distinct compressed cluster; cached clusters need no I/O.
  struct Job {
    uint64_t host = 0, csize = 0, guest = 0;
    size_t raw_at = 0, raw_len = 0;  // its compressed bytes in the scratch buffer
    GrainBuffer out;
    Status st;
    size_t segs = 0;           // how many of the read's segments this cluster serves
    uint8_t* direct = nullptr;  // decompressed straight here: one segment covering the whole cluster
  };
  std::vector<Job> jobs;
  std::map<uint64_t, size_t> index;
  std::vector<size_t> seg_job(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = *segs[i];
    auto [it, fresh] = index.try_emplace(s.host, jobs.size());
    if (fresh) {
      Job j;
      j.host = s.host;
      j.csize = s.csize;
      j.guest = s.cluster_guest;
      j.out = grain_cache_.get(GrainCache::make_key(0, s.host));
      jobs.push_back(std::move(j));
    }
    seg_job[i] = it->second;
    Job& j = jobs[it->second];
    ++j.segs;
    j.direct = j.segs == 1 && s.guest == s.cluster_guest && s.len == cs ? dst + (s.guest - base) : nullptr;
  }
  std::vector<size_t> misses;
  // Compressed clusters lie one after another in the file (qemu-img and vdkit pack them byte by byte, so a
  // cluster's sector-rounded size reaches into the next one): such a run is one read, and each cluster's bytes are
  // found inside it.
  struct Run {
    uint64_t start, end;
    size_t at;  // in the scratch buffer
  };
  std::vector<Run> runs;
  std::vector<size_t> run_of;
  size_t raw_bytes = 0;
  constexpr uint64_t kMaxRunBytes = 8u << 20;
  for (size_t k = 0; k < jobs.size(); ++k) {
    Job& j = jobs[k];
    if (j.out) continue;
    // QEMU writes compressed data up to its exact end and counts whole 512-byte
    // sectors, so the range may end inside the file's last sector, never beyond it.
    uint64_t file_end_rounded = fsize + ((512 - fsize % 512) % 512);
    if (j.host >= fsize || !range_within(j.host, j.csize, file_end_rounded))
      return Status::Corrupt("compressed cluster for guest offset " + std::to_string(j.guest) + " at host offset " +
                             hex(j.host) + " (" + std::to_string(j.csize) + " bytes) lies past the end of the file (" +
                             std::to_string(fsize) + " bytes)");
    j.raw_len = std::min(j.csize, fsize - j.host);
    const uint64_t end = j.host + j.raw_len;
    if (!runs.empty() && j.host >= runs.back().start && j.host <= runs.back().end &&
        std::max(end, runs.back().end) - runs.back().start <= kMaxRunBytes) {
      runs.back().end = std::max(runs.back().end, end);
    } else {
      if (!runs.empty()) raw_bytes += runs.back().end - runs.back().start;
      runs.push_back(Run{j.host, end, raw_bytes});
    }
    j.raw_at = runs.back().at + (j.host - runs.back().start);
    run_of.push_back(runs.size() - 1);
    misses.push_back(k);
  }
  if (!runs.empty()) raw_bytes += runs.back().end - runs.back().start;
  std::vector<IoRequest> reqs;
  if (!misses.empty()) {
    ScratchLease scratch(raw_bytes);
    for (const Run& r : runs) reqs.push_back({-1, scratch.data() + r.at, r.end - r.start, r.start, false, 0});
    VDKIT_RETURN_IF_ERROR(file_->Submit(reqs));
    // What a short read (the end of the file) left of each cluster's bytes.
    for (size_t m = 0; m < misses.size(); ++m) {
      Job& j = jobs[misses[m]];
      const IoRequest& r = reqs[run_of[m]];
      const uint64_t got_end = r.offset + static_cast<uint64_t>(std::max<int64_t>(r.result, 0));
      j.raw_len = got_end <= j.host ? 0 : static_cast<size_t>(std::min<uint64_t>(j.raw_len, got_end - j.host));
    }
    ThreadPool::shared().parallel_for(misses.size(), [&](size_t m) {
      Job& j = jobs[misses[m]];
      // A whole cluster read (a conversion, a large client read) is decompressed in place: no buffer to zero, no
      // copy, and no cache entry, which only a later partial read of the same cluster would use.
      auto out = j.direct ? nullptr : std::make_shared<std::vector<uint8_t>>(cs);
      const std::span<const uint8_t> in(scratch.data() + j.raw_at, j.raw_len);
      j.st = decompress(codec_, in, j.direct ? std::span<uint8_t>(j.direct, cs) : std::span<uint8_t>(*out));
      if (!j.st.ok()) {
        j.st = j.st.Context("compressed cluster for guest offset " + std::to_string(j.guest) + " at host offset " +
                            hex(j.host) + " (" + std::to_string(j.csize) + " bytes)");
        return;
      }
      if (j.direct) return;
      j.out = std::move(out);
      grain_cache_.put(GrainCache::make_key(0, j.host), j.out);
    });
    for (size_t m : misses)
      if (!jobs[m].st.ok()) return jobs[m].st;
  }
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = *segs[i];
    const Job& j = jobs[seg_job[i]];
    if (!j.out) continue;  // decompressed in place
    std::memcpy(dst + (s.guest - base), j.out->data() + (s.guest - s.cluster_guest), s.len);
  }
  return Status::Ok();
}

Status Qcow2Device::read_segments(const std::vector<Segment>& segs, uint64_t base, uint8_t* dst) {
  std::vector<IoRequest> reqs;
  std::vector<const Segment*> normal, compressed;
  const uint64_t dsize = data_size_.load();
  for (const Segment& s : segs) {
    uint8_t* p = dst + (s.guest - base);
    switch (s.kind) {
      case Kind::kZero:
        std::memset(p, 0, s.len);
        break;
      case Kind::kUnalloc:
        VDKIT_RETURN_IF_ERROR(read_backing(s.guest, s.len, p));
        break;
      case Kind::kCompressed:
        compressed.push_back(&s);
        break;
      case Kind::kNormal:
        if (!range_within(s.host, s.len, dsize))
          return Status::Corrupt("guest offset " + std::to_string(s.guest) + " maps to host offset " + hex(s.host) +
                                 " (" + std::to_string(s.len) + " bytes), past the end of '" + data_file_->path() +
                                 "' (" + std::to_string(dsize) + " bytes)");
        reqs.push_back({-1, p, s.len, s.host, false, 0});
        normal.push_back(&s);
        break;
    }
  }
  if (!reqs.empty()) {
    VDKIT_RETURN_IF_ERROR(data_file_->Submit(reqs));
    for (size_t i = 0; i < reqs.size(); ++i)
      if (static_cast<uint64_t>(reqs[i].result) != reqs[i].len)
        return Status::IoError("'" + data_file_->path() + "': short read at host offset " + hex(reqs[i].offset) +
                               " for guest offset " + std::to_string(normal[i]->guest));
  }
  if (!compressed.empty()) VDKIT_RETURN_IF_ERROR(read_compressed(compressed, base, dst));
  return Status::Ok();
}

Status Qcow2Device::read(uint64_t offset, std::span<uint8_t> buf) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
  if (buf.empty()) return Status::Ok();
  std::vector<Segment> segs;
  {
    std::shared_lock<std::shared_mutex> lk(meta_mu_);
    VDKIT_RETURN_IF_ERROR(map_range(offset, buf.size(), segs).Context("'" + file_->path() + "'"));
  }
  return read_segments(segs, offset, buf.data()).Context("'" + file_->path() + "'");
}

Status Qcow2Device::extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, length));
  if (length == 0) return Status::Ok();
  std::vector<Segment> segs;
  {
    std::shared_lock<std::shared_mutex> lk(meta_mu_);
    VDKIT_RETURN_IF_ERROR(map_range(offset, length, segs).Context("'" + file_->path() + "'"));
  }
  for (const Segment& s : segs) {
    switch (s.kind) {
      case Kind::kNormal:
      case Kind::kCompressed:
        append_extent(out, {s.guest, s.len, ExtentType::kData});
        break;
      case Kind::kZero:
        append_extent(out, {s.guest, s.len, ExtentType::kZero});
        break;
      case Kind::kUnalloc: {
        uint64_t n = backing_ && s.guest < backing_size_ ? std::min(s.len, backing_size_ - s.guest) : 0;
        if (n) {
          std::vector<Extent> sub;
          VDKIT_RETURN_IF_ERROR(backing_->extents(s.guest, n, sub));
          for (const auto& e : sub) append_extent(out, e);
        }
        if (n < s.len) append_extent(out, {s.guest + n, s.len - n, ExtentType::kHole});
        break;
      }
    }
  }
  return Status::Ok();
}

Status Qcow2Device::prefetch(uint64_t offset, uint64_t length) {
  VDKIT_RETURN_IF_ERROR(check_range(offset, length));
  length = std::min(length, kMaxPrefetchBytes);
  std::vector<uint8_t> scratch(std::min<uint64_t>(length, 4 << 20));
  for (uint64_t pos = offset; pos < offset + length;) {
    uint64_t n = std::min<uint64_t>(scratch.size(), offset + length - pos);
    VDKIT_RETURN_IF_ERROR(read(pos, std::span<uint8_t>(scratch.data(), n)));
    pos += n;
  }
  return Status::Ok();
}

DeviceCaps Qcow2Device::caps() const {
  DeviceCaps c;
  c.writable = c.can_zero = c.can_trim = c.can_flush = writable_;
  c.flush_consistent = true;
  return c;
}

void Qcow2Device::build_info(const OpenContext& ctx) {
  info_.filename = file_->path();
  info_.format = "qcow2";
  info_.virtual_size = h_.size;
  info_.actual_size = file_->AllocatedBytes() + (data_file_ != file_ ? data_file_->AllocatedBytes() : 0);
  info_.cluster_size = h_.cluster_size();
  info_.compression = h_.compression_type == kCompressionZstd ? "zstd" : "zlib";
  info_.version = static_cast<int>(h_.version);
  info_.dirty = h_.incompatible & kIncompatDirty;
  info_.corrupt = h_.incompatible & kIncompatCorrupt;
  if (data_file_ != file_) info_.files.push_back(data_file_resolved_);
  info_.backing_filename = h_.backing_file;
  info_.backing_format = h_.backing_format;
  info_.backing_resolved = backing_resolved_;
  if (backing_) info_.backing = std::make_shared<const ImageInfo>(backing_->info());
  auto yes = [](bool b) { return std::string(b ? "true" : "false"); };
  info_.specific.emplace_back("compat", h_.version == 2 ? "0.10" : "1.1");
  info_.specific.emplace_back("compression type", info_.compression);
  info_.specific.emplace_back("refcount bits", std::to_string(1u << h_.refcount_order));
  info_.specific.emplace_back("extended l2", yes(h_.extended_l2()));
  info_.specific.emplace_back("lazy refcounts", yes(h_.compatible & kCompatLazyRefcounts));
  if (h_.has_data_file()) {
    info_.specific.emplace_back("data file", h_.data_file);
    info_.specific.emplace_back("data file raw", yes(h_.autoclear & kAutoclearDataFileRaw));
  }
  info_.specific.emplace_back("snapshots", std::to_string(h_.nb_snapshots));
  (void)ctx;
}

Result<BlockDevicePtr> Qcow2Device::Open(std::shared_ptr<File> file, const OpenContext& ctx, BlockDevicePtr backing,
                                         std::string backing_resolved) {
  const std::string path = file->path();
  auto in_file = [&](const Status& st) { return st.Context("'" + path + "'"); };
  auto fsize = file->Size();
  if (!fsize.ok()) return fsize.status();
  auto hr = read_header(*file, *fsize);
  if (!hr.ok()) return in_file(hr.status());
  Header h = std::move(hr).value();

  bool want_write = ctx.top && ctx.options.writable;
  if (want_write) {
    auto refuse = [&](const std::string& why) {
      return Status::Unsupported("'" + path + "': cannot open for writing: " + why);
    };
    if (!file->writable()) return Status::Error(EROFS, "'" + path + "': the file was opened read-only");
    if (h.extended_l2())
      return refuse("writing to qcow2 images with extended L2 entries (subclusters) is not supported");
    if (h.has_data_file()) return refuse("writing to qcow2 images with an external data file is not supported");
    if (h.nb_snapshots) return refuse("writing to qcow2 images with internal snapshots is not supported");
    if (h.incompatible & kIncompatCorrupt)
      return Status::Error(EROFS, "'" + path + "': the image is marked corrupt; it can only be opened read-only");
    if (h.incompatible & kIncompatDirty)
      return refuse("the image's dirty bit is set (refcounts may be stale); run 'qemu-img check -r all' first");
  }

  std::unique_ptr<Qcow2Device> dev(new Qcow2Device(file, h, ctx));
  dev->file_size_ = *fsize;
  dev->writable_ = want_write;
  if (Status st = dev->open_tables(); !st.ok()) return in_file(st);

  const std::string dir = dir_of(path);
  if (h.has_data_file()) {
    VDKIT_ASSIGN_OR_RETURN(std::string dpath, resolve_reference(ctx, dir, h.data_file, "data file"));
    auto df = File::Open(dpath, File::Mode::kReadOnly, ctx.options.engine);
    if (!df.ok()) return df.status().Context("'" + path + "': opening its data file");
    dev->data_file_ = *df;
    dev->data_file_resolved_ = dpath;
    auto dsize = dev->data_file_->Size();
    if (!dsize.ok()) return dsize.status();
    dev->data_size_ = *dsize;
  } else {
    dev->data_file_ = file;
    dev->data_size_ = *fsize;
  }

  if (backing) {
    dev->backing_ = std::move(backing);
    dev->backing_resolved_ = std::move(backing_resolved);
  } else if (!h.backing_file.empty()) {
    VDKIT_ASSIGN_OR_RETURN(std::string bpath, resolve_reference(ctx, dir, h.backing_file, "backing file"));
    VDKIT_ASSIGN_OR_RETURN(dev->backing_, open_chained_image(ctx, bpath, h.backing_format, "backing file"));
    dev->backing_resolved_ = bpath;
  }
  if (dev->backing_) dev->backing_size_ = dev->backing_->size();

  if (want_write) {
    if (Status st = dev->load_refcount_table(); !st.ok()) return in_file(st);
  }
  dev->build_info(ctx);
  return BlockDevicePtr(std::move(dev));
}

}  // namespace qcow2

Result<BlockDevicePtr> open_qcow2(std::shared_ptr<File> file, const OpenContext& ctx) {
  return qcow2::Qcow2Device::Open(std::move(file), ctx);
}

}  // namespace vdkit
