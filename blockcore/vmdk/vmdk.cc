// The VMDK driver: opens a descriptor or sparse file, lays its extents out as one disk, reads grains in batches.
//
// Reading: a request is cut at extent boundaries; inside a sparse extent it is
// processed in windows of grains. For each window every host read (plain grains
// straight into the caller's buffer, compressed grains into scratch spans that
// gather neighbours) goes to the I/O engine in one File::Submit batch, then
// compressed grains are inflated in parallel on the shared ThreadPool and kept
// in a GrainCache. Unallocated grains are read from the parent disk, if any.
#include <libdeflate.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "blockcore/base/checked.h"
#include "blockcore/base/codec.h"
#include "blockcore/base/grain_cache.h"
#include "blockcore/base/scratch.h"
#include "blockcore/base/thread_pool.h"
#include "blockcore/sources/image.h"
#include "blockcore/vmdk/vmdk_format.h"
#include "blockcore/vmdk/vmdk_grain_map.h"

namespace vdkit {

namespace {

using namespace vmdk;

// Grains handled per batch: at most 256, and at most 32 MiB of grains, which bounds the
// scratch memory of one read call (about two grains each) even for 128 MiB grains.
constexpr uint64_t kMaxGrainsPerWindow = 256;
constexpr uint64_t kWindowBytes = 32u << 20;
// Grain-table cache per device.
constexpr size_t kGrainTableCacheBytes = 16u << 20;
// Compressed spans closer than this are fetched with one read.
constexpr uint64_t kGatherGapBytes = 64u << 10;

enum class Kind { kFlat, kZero, kSparse };

struct VmdkExtent {
  Kind kind = Kind::kZero;
  uint64_t start = 0;             // byte offset in the virtual disk
  uint64_t length = 0;            // bytes
  std::shared_ptr<File> file;     // flat
  uint64_t file_offset = 0;       // flat: bytes
  std::unique_ptr<GrainMap> map;  // sparse and seSparse
  uint32_t file_id = 0;
};

// Inflates one zlib (RFC 1950) grain; trailing bytes after the stream are sector padding.
Result<size_t> inflate_grain(std::span<const uint8_t> src, std::span<uint8_t> dst) {
  thread_local std::unique_ptr<libdeflate_decompressor, decltype(&libdeflate_free_decompressor)> d(
      libdeflate_alloc_decompressor(), &libdeflate_free_decompressor);
  if (!d) return Status::Error(ENOMEM, "cannot allocate a deflate decompressor");
  size_t in_used = 0, out_len = 0;
  auto r = libdeflate_zlib_decompress_ex(d.get(), src.data(), src.size(), dst.data(), dst.size(), &in_used, &out_len);
  if (r == LIBDEFLATE_SUCCESS) return out_len;
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE) return Status::Corrupt("inflates to more than one grain");
  return Status::Corrupt("is not a valid zlib stream");
}

class VmdkDevice final : public BlockDevice {
 public:
  explicit VmdkDevice(size_t cache_bytes) : grain_cache_(cache_bytes), gt_cache_(kGrainTableCacheBytes) {}

  uint64_t size() const override { return size_; }
  const ImageInfo& info() const override { return info_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    uint64_t pos = offset, end = offset + buf.size();
    size_t i = find_extent(pos);
    while (pos < end) {
      const VmdkExtent& e = extents_[i];
      uint64_t n = std::min(end, e.start + e.length) - pos;
      std::span<uint8_t> out = buf.subspan(pos - offset, n);
      switch (e.kind) {
        case Kind::kZero:
          std::memset(out.data(), 0, n);
          break;
        case Kind::kFlat: {
          VDKIT_ASSIGN_OR_RETURN(size_t got, e.file->ReadSome(e.file_offset + (pos - e.start), out.data(), n));
          // A flat file shorter than its extent reads as zeros past its end, as in QEMU.
          if (got < n) std::memset(out.data() + got, 0, n - got);
          break;
        }
        case Kind::kSparse:
          VDKIT_RETURN_IF_ERROR(read_sparse(e, pos - e.start, out));
          break;
      }
      pos += n;
      ++i;
    }
    return Status::Ok();
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    uint64_t pos = offset, end = offset + length;
    size_t i = find_extent(pos);
    while (pos < end) {
      const VmdkExtent& e = extents_[i];
      uint64_t n = std::min(end, e.start + e.length) - pos;
      switch (e.kind) {
        case Kind::kZero:
          append_extent(out, {pos, n, ExtentType::kZero});
          break;
        case Kind::kFlat: {
          std::vector<std::pair<uint64_t, uint64_t>> runs;
          uint64_t fo = e.file_offset + (pos - e.start);
          VDKIT_RETURN_IF_ERROR(e.file->DataRuns(fo, n, runs));
          // Flat extents shadow any parent: a file hole there reads as zeros.
          ExtentType gap = parent_ ? ExtentType::kZero : ExtentType::kHole;
          uint64_t p = fo;
          for (auto [s, t] : runs) {
            if (s > p) append_extent(out, {pos + (p - fo), s - p, gap});
            append_extent(out, {pos + (s - fo), t - s, ExtentType::kData});
            p = t;
          }
          if (p < fo + n) append_extent(out, {pos + (p - fo), fo + n - p, gap});
          break;
        }
        case Kind::kSparse:
          VDKIT_RETURN_IF_ERROR(sparse_extents(e, pos - e.start, n, out));
          break;
      }
      pos += n;
      ++i;
    }
    return Status::Ok();
  }

  // Opening fills these.
  std::vector<VmdkExtent> extents_;
  uint64_t size_ = 0;
  BlockDevicePtr parent_;
  ImageInfo info_;
  GrainCache grain_cache_;
  GrainCache gt_cache_;

 private:
  size_t find_extent(uint64_t pos) const {
    auto it = std::upper_bound(extents_.begin(), extents_.end(), pos,
                               [](uint64_t p, const VmdkExtent& e) { return p < e.start; });
    return static_cast<size_t>(it - extents_.begin()) - 1;
  }

  // Reads [disk_off, disk_off + out.size()) of the parent, zeros past its end.
  Status read_parent(uint64_t disk_off, std::span<uint8_t> out) {
    uint64_t psize = parent_ ? parent_->size() : 0;
    uint64_t n = disk_off < psize ? std::min<uint64_t>(out.size(), psize - disk_off) : 0;
    if (n) VDKIT_RETURN_IF_ERROR(parent_->read(disk_off, out.subspan(0, n)));
    if (n < out.size()) std::memset(out.data() + n, 0, out.size() - n);
    return Status::Ok();
  }

  Status parent_extents(uint64_t disk_off, uint64_t len, std::vector<Extent>& out) {
    uint64_t psize = parent_ ? parent_->size() : 0;
    uint64_t n = disk_off < psize ? std::min(len, psize - disk_off) : 0;
    if (n) VDKIT_RETURN_IF_ERROR(parent_->extents(disk_off, n, out));
    if (n < len) append_extent(out, {disk_off + n, len - n, ExtentType::kHole});
    return Status::Ok();
  }

  Status sparse_extents(const VmdkExtent& e, uint64_t off, uint64_t len, std::vector<Extent>& out) {
    const uint64_t gb = e.map->grain_bytes();
    uint64_t end = off + len;
    std::vector<GrainLoc> locs;
    const uint64_t per_table = e.map->grains_per_table();
    for (uint64_t g0 = off / gb; g0 * gb < end;) {
      if (!e.map->table_exists(g0)) {
        // A whole missing grain table: one unallocated run, no per-grain work.
        uint64_t g1 = (g0 / per_table + 1) * per_table;
        uint64_t s = std::max(off, g0 * gb), t = std::min(end, g1 * gb);
        if (parent_)
          VDKIT_RETURN_IF_ERROR(parent_extents(e.start + s, t - s, out));
        else
          append_extent(out, {e.start + s, t - s, ExtentType::kHole});
        g0 = g1;
        continue;
      }
      uint64_t count = std::min<uint64_t>(div_round_up(end, gb) - g0, 65536);
      locs.clear();
      VDKIT_RETURN_IF_ERROR(e.map->lookup(g0, count, locs));
      // Runs of one extent type (plain and compressed grains are both data), so a
      // parent is asked about whole unallocated runs at once.
      auto type_of = [](GrainState st) {
        return st == GrainState::kUnallocated ? ExtentType::kHole
               : st == GrainState::kZero      ? ExtentType::kZero
                                              : ExtentType::kData;
      };
      for (uint64_t k = 0; k < count;) {
        uint64_t j = k + 1;
        while (j < count && type_of(locs[j].state) == type_of(locs[k].state)) ++j;
        uint64_t s = std::max(off, (g0 + k) * gb), t = std::min(end, (g0 + j) * gb);
        switch (locs[k].state) {
          case GrainState::kUnallocated:
            if (parent_)
              VDKIT_RETURN_IF_ERROR(parent_extents(e.start + s, t - s, out));
            else
              append_extent(out, {e.start + s, t - s, ExtentType::kHole});
            break;
          case GrainState::kZero:
            append_extent(out, {e.start + s, t - s, ExtentType::kZero});
            break;
          default:
            append_extent(out, {e.start + s, t - s, ExtentType::kData});
        }
        k = j;
      }
      g0 += count;
    }
    return Status::Ok();
  }

  Status read_sparse(const VmdkExtent& e, uint64_t off, std::span<uint8_t> out) {
    const uint64_t gb = e.map->grain_bytes();
    uint64_t end = off + out.size();
    for (uint64_t g0 = off / gb; g0 * gb < end;) {
      uint64_t per_window = std::clamp<uint64_t>(kWindowBytes / gb, 1, kMaxGrainsPerWindow);
      uint64_t g1 = std::min(div_round_up(end, gb), g0 + per_window);
      uint64_t s = std::max(off, g0 * gb), t = std::min(end, g1 * gb);
      VDKIT_RETURN_IF_ERROR(read_window(e, g0, g1, s, out.subspan(s - off, t - s)));
      g0 = g1;
    }
    return Status::Ok();
  }

  struct Pending {  // a compressed grain to fetch and inflate
    uint64_t grain;
    uint64_t host;
    size_t span;  // index into spans
    GrainBuffer data;
    Status status;
    bool direct = false;  // inflated straight into the caller's buffer (the read covers the whole grain)
  };

  // Reads grains [g0, g1) of extent e that overlap [off, off + out.size()) (extent-relative bytes).
  Status read_window(const VmdkExtent& e, uint64_t g0, uint64_t g1, uint64_t off, std::span<uint8_t> out) {
    GrainMap& m = *e.map;
    const uint64_t gb = m.grain_bytes();
    const int fd = m.file()->fd();
    std::vector<GrainLoc> locs;
    locs.reserve(g1 - g0);
    VDKIT_RETURN_IF_ERROR(m.lookup(g0, g1 - g0, locs));
    const uint64_t end = off + out.size();
    auto piece = [&](uint64_t g) {  // [s, t) of grain g inside the request
      return std::pair<uint64_t, uint64_t>{std::max(off, g * gb), std::min(end, (g + 1) * gb)};
    };

    std::vector<IoRequest> reqs;
    std::vector<Pending> pending;
    std::vector<std::pair<uint64_t, uint64_t>> parent_runs;  // extent-relative [s, t)
    for (uint64_t g = g0; g < g1; ++g) {
      auto [s, t] = piece(g);
      uint8_t* dst = out.data() + (s - off);
      const GrainLoc& loc = locs[g - g0];
      switch (loc.state) {
        case GrainState::kUnallocated:
          if (parent_) {
            if (!parent_runs.empty() && parent_runs.back().second == s)
              parent_runs.back().second = t;
            else
              parent_runs.emplace_back(s, t);
          } else {
            std::memset(dst, 0, t - s);
          }
          break;
        case GrainState::kZero:
          std::memset(dst, 0, t - s);
          break;
        case GrainState::kData: {
          uint64_t host = loc.host + (s - g * gb);
          if (!reqs.empty() && static_cast<uint8_t*>(reqs.back().buf) + reqs.back().len == dst &&
              reqs.back().offset + reqs.back().len == host) {
            reqs.back().len += t - s;
          } else {
            reqs.push_back(IoRequest{fd, dst, t - s, host, false, 0});
          }
          break;
        }
        case GrainState::kCompressed: {
          uint64_t key = GrainCache::make_key(e.file_id, loc.host);
          GrainBuffer hit = e.file_id <= kMaxCachedFileId ? grain_cache_.get(key) : nullptr;
          if (hit) {
            std::memcpy(dst, hit->data() + (s - g * gb), t - s);
          } else {
            pending.push_back(Pending{g, loc.host, 0, nullptr, Status::Ok()});
          }
          break;
        }
      }
    }
    const size_t direct = reqs.size();

    // Gather compressed grains into spans: each needs its marker and up to about
    // one grain of data (re-read below if its marker says more).
    struct Span {
      uint64_t start, end;
      size_t at = 0;  // where its bytes start in the scratch buffer
    };
    std::vector<Span> spans;
    const uint64_t guess = (m.markers() ? kGrainMarkerBytes : 0) + gb + kSectorSize;
    std::sort(pending.begin(), pending.end(), [](const Pending& a, const Pending& b) { return a.host < b.host; });
    for (auto& p : pending) {
      uint64_t s = p.host, t = std::min(m.file_size(), p.host + guess);
      if (!spans.empty() && s <= spans.back().end + kGatherGapBytes && t - spans.back().start <= (8u << 20)) {
        spans.back().end = std::max(spans.back().end, t);
      } else {
        spans.push_back(Span{s, t});
      }
      p.span = spans.size() - 1;
    }
    size_t span_bytes = 0;
    for (auto& sp : spans) {
      sp.at = span_bytes;
      span_bytes += sp.end - sp.start;
    }
    ScratchLease scratch(span_bytes);
    for (auto& sp : spans)
      reqs.push_back(IoRequest{fd, scratch.data() + sp.at, sp.end - sp.start, sp.start, false, 0});
    if (!reqs.empty()) {
      VDKIT_RETURN_IF_ERROR(m.file()->Submit(reqs));
      // A grain cut short by the end of the file reads as zeros past it, as in QEMU (the lookup already refused
      // grains that start past the end). So does a span of compressed grains: a grain there then fails its marker
      // or inflate checks the same way every time, whatever the scratch buffer held before.
      for (size_t k = 0; k < reqs.size(); ++k) {
        if (reqs[k].result < 0)
          return Status::IoError("'" + m.file()->path() + "': reading " +
                                 (k < direct ? "a grain" : "compressed grains") + " at offset " +
                                 hex_offset(reqs[k].offset) + " failed");
        auto done = static_cast<size_t>(reqs[k].result);
        if (done < reqs[k].len) std::memset(static_cast<uint8_t*>(reqs[k].buf) + done, 0, reqs[k].len - done);
      }
    }

    // Inflate in parallel; each task finds its compressed bytes (re-reading when the span was short).
    auto inflate_one = [&](size_t k) {
      Pending& p = pending[k];
      const Span& sp = spans[p.span];
      const uint8_t* src = scratch.data() + sp.at + (p.host - sp.start);
      size_t avail = sp.end - p.host;
      size_t clen = avail;
      uint64_t data_at = p.host;
      std::vector<uint8_t> reread;
      const uint64_t limit = max_compressed_grain_bytes(gb);
      if (m.markers()) {
        auto mk = parse_marker({src, avail}, m.file()->path(), p.host);
        if (!mk.ok()) {
          p.status = mk.status();
          return;
        }
        if (mk->size == 0 || mk->size > limit || !range_within(p.host + kGrainMarkerBytes, mk->size, m.file_size())) {
          p.status = Status::Corrupt("'" + m.file()->path() + "': grain marker at offset " + hex_offset(p.host) +
                                     " gives a compressed size of " + std::to_string(mk->size) +
                                     " bytes, beyond the end of the file or the limit of " + std::to_string(limit) +
                                     " (twice the grain size)");
          return;
        }
        clen = mk->size;
        data_at = p.host + kGrainMarkerBytes;
        if (kGrainMarkerBytes + clen <= avail) {
          src += kGrainMarkerBytes;
        } else {
          reread.resize(clen);
          p.status = m.file()->ReadExact(data_at, reread.data(), clen);
          if (!p.status.ok()) return;
          src = reread.data();
        }
      } else {
        clen = std::min<uint64_t>(avail, limit);
      }
      // A read that covers the whole grain (a conversion, a large client read) gets it inflated in place: no
      // buffer to zero, no copy, and no cache entry, which only a later partial read of the same grain would use.
      auto [ps, pt] = piece(p.grain);
      p.direct = ps == p.grain * gb && pt - ps == gb;
      auto grain = p.direct ? nullptr : std::make_shared<std::vector<uint8_t>>(gb);
      std::span<uint8_t> into = p.direct ? out.subspan(ps - off, gb) : std::span<uint8_t>(*grain);
      auto got = inflate_grain({src, clen}, into);
      if (!got.ok()) {
        p.status = Status::Corrupt("'" + m.file()->path() + "': compressed grain " + std::to_string(p.grain) +
                                   " at offset " + hex_offset(data_at) + " " + got.status().message());
        return;
      }
      // A short grain is fine only where it covers the part past the extent's end.
      uint64_t need = std::min(gb, e.length - p.grain * gb);
      if (*got < need) {
        p.status = Status::Corrupt("'" + m.file()->path() + "': compressed grain " + std::to_string(p.grain) +
                                   " at offset " + hex_offset(data_at) + " inflates to " + std::to_string(*got) +
                                   " bytes, less than the " + std::to_string(need) + " it must hold");
        return;
      }
      p.data = std::move(grain);
    };
    if (pending.size() == 1)
      inflate_one(0);
    else if (!pending.empty())
      ThreadPool::shared().parallel_for(pending.size(), inflate_one);
    for (auto& p : pending) {
      VDKIT_RETURN_IF_ERROR(p.status);
      if (p.direct) continue;
      if (e.file_id <= kMaxCachedFileId) grain_cache_.put(GrainCache::make_key(e.file_id, p.host), p.data);
      auto [s, t] = piece(p.grain);
      std::memcpy(out.data() + (s - off), p.data->data() + (s - p.grain * gb), t - s);
    }

    for (auto [s, t] : parent_runs) VDKIT_RETURN_IF_ERROR(read_parent(e.start + s, out.subspan(s - off, t - s)));
    return Status::Ok();
  }
};

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Opens the extent files a descriptor names and lays them out on dev.
Status add_descriptor_extents(VmdkDevice& dev, const Descriptor& d, const OpenContext& ctx,
                              const std::string& desc_path, std::vector<std::shared_ptr<File>>& files, int& version,
                              uint64_t& grain_bytes, bool& compressed, bool& dirty) {
  const std::string dir = dir_of(desc_path);
  uint64_t pos = 0;
  uint64_t directory_bytes = 0;  // over all extents, bounded like one extent's
  for (size_t i = 0; i < d.extents.size(); ++i) {
    const DescriptorExtent& de = d.extents[i];
    auto ctx_err = [&](const Status& st) {
      return st.Context("'" + desc_path + "': extent on descriptor line " + std::to_string(de.line));
    };
    if (de.access == ExtentAccess::kNoAccess) return ctx_err(Status::Unsupported("NOACCESS extents cannot be read"));
    VmdkExtent x;
    x.start = pos;
    x.length = de.sectors * kSectorSize;  // sectors <= kMaxCapacitySectors: no overflow
    x.file_id = static_cast<uint32_t>(i);
    if (de.kind == ExtentKind::kZero) {
      x.kind = Kind::kZero;
    } else {
      auto path = resolve_reference(ctx, dir, de.filename, "extent file");
      if (!path.ok()) return ctx_err(path.status());
      auto file = File::Open(*path, File::Mode::kReadOnly, ctx.options.engine);
      if (!file.ok()) return ctx_err(file.status());
      files.push_back(*file);
      switch (de.kind) {
        case ExtentKind::kFlat:
        case ExtentKind::kVmfs:
        case ExtentKind::kVmfsRaw:
        case ExtentKind::kVmfsRdm:
          x.kind = Kind::kFlat;
          x.file = *file;
          x.file_offset = de.offset * kSectorSize;
          break;
        case ExtentKind::kSparse:
        case ExtentKind::kVmfsSparse: {
          uint8_t magic[4] = {};
          auto got = (*file)->ReadSome(0, magic, 4);
          if (!got.ok()) return ctx_err(got.status());
          if (*got == 4 && std::memcmp(magic, "COWD", 4) == 0)
            return ctx_err(Status::Unsupported("'" + *path +
                                               "' is a COWD (ESX 2.x / vmfsSparse) extent, which vdkit does not read"));
          auto s = open_hosted_sparse(*file, x.file_id, &dev.gt_cache_);
          if (!s.ok()) return ctx_err(s.status());
          VDKIT_RETURN_IF_ERROR(ctx_err(check_capacity(*s, de.sectors, *path)));
          if (!version) version = static_cast<int>(s->header.version);
          if (!grain_bytes) grain_bytes = s->header.grain_bytes();
          compressed |= s->header.compressed();
          dirty |= s->header.unclean_shutdown;
          x.kind = Kind::kSparse;
          x.map = std::move(s->map);
          break;
        }
        case ExtentKind::kSeSparse: {
          auto m = open_sesparse(*file, x.file_id, &dev.gt_cache_, de.sectors);
          if (!m.ok()) return ctx_err(m.status());
          if (!grain_bytes) grain_bytes = (*m)->grain_bytes();
          x.kind = Kind::kSparse;
          x.map = std::move(*m);
          break;
        }
        case ExtentKind::kZero:
          break;
      }
    }
    if (x.map) {
      directory_bytes += x.map->directory_bytes();
      if (directory_bytes > kMaxGrainDirectoryBytes)
        return ctx_err(Status::Corrupt("the grain directories of the extents so far add up to " +
                                       std::to_string(directory_bytes) + " bytes, more than the limit of " +
                                       std::to_string(kMaxGrainDirectoryBytes) + " (kMaxGrainDirectoryBytes)"));
    }
    dev.info_.specific.emplace_back("extent " + std::to_string(i),
                                    std::string(to_string(de.kind)) + " " + std::to_string(x.length) + " bytes" +
                                        (de.filename.empty() ? "" : " \"" + de.filename + "\"") +
                                        (de.offset ? " at sector " + std::to_string(de.offset) : ""));
    pos += x.length;
    dev.extents_.push_back(std::move(x));
  }
  dev.size_ = pos;
  return Status::Ok();
}

}  // namespace

Result<BlockDevicePtr> open_vmdk(std::shared_ptr<File> file, const OpenContext& ctx) {
  const std::string path = file->path();
  auto dev = std::make_unique<VmdkDevice>(ctx.options.cache_bytes);
  VDKIT_ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  uint8_t magic[4] = {};
  VDKIT_ASSIGN_OR_RETURN(size_t got, file->ReadSome(0, magic, 4));
  std::vector<std::shared_ptr<File>> files;
  Descriptor desc;
  int version = 0;
  uint64_t grain_bytes = 0;
  bool compressed = false, dirty = false;

  if (got == 4 && std::memcmp(magic, "KDMV", 4) == 0) {
    // A sparse extent: monolithicSparse or streamOptimized, descriptor embedded.
    VDKIT_ASSIGN_OR_RETURN(HostedSparse s, open_hosted_sparse(file, 0, &dev->gt_cache_));
    bool have_desc = !s.embedded_descriptor.empty();
    if (have_desc) {
      auto d = parse_descriptor(s.embedded_descriptor, path + " (embedded descriptor)");
      if (!d.ok()) return d.status();
      desc = std::move(*d);
    } else {
      desc.create_type = s.header.has_markers() ? "streamOptimized" : "monolithicSparse";
    }
    if (s.header.capacity == 0 && have_desc) {
      // A header with no data of its own that only carries a descriptor: follow its extents.
      VDKIT_RETURN_IF_ERROR(
          add_descriptor_extents(*dev, desc, ctx, path, files, version, grain_bytes, compressed, dirty));
    } else {
      // The file is the one extent, whatever its embedded descriptor lists.
      VmdkExtent x;
      x.kind = Kind::kSparse;
      x.length = s.header.capacity * kSectorSize;
      x.file_id = 0;
      version = static_cast<int>(s.header.version);
      grain_bytes = s.header.grain_bytes();
      compressed = s.header.compressed();
      dirty = s.header.unclean_shutdown;
      x.map = std::move(s.map);
      dev->size_ = x.length;
      if (x.length) dev->extents_.push_back(std::move(x));
      files.push_back(file);
      dev->info_.specific.emplace_back("extent 0", std::string("SPARSE ") + std::to_string(dev->size_) + " bytes \"" +
                                                       std::filesystem::path(path).filename().string() + "\"");
    }
  } else {
    if (file_size > kMaxDescriptorBytes)
      return Status::Corrupt("'" + path + "': descriptor file is " + std::to_string(file_size) +
                             " bytes, more than the limit of " + std::to_string(kMaxDescriptorBytes) +
                             " (kMaxDescriptorBytes = 1 MiB)");
    std::string text(file_size, '\0');
    VDKIT_RETURN_IF_ERROR(file->ReadExact(0, text.data(), text.size()));
    VDKIT_ASSIGN_OR_RETURN(desc, parse_descriptor(text, path));
    VDKIT_RETURN_IF_ERROR(
        add_descriptor_extents(*dev, desc, ctx, path, files, version, grain_bytes, compressed, dirty));
  }
  if (dev->extents_.empty() && dev->size_ != 0)
    return Status::Corrupt("'" + path + "': internal error: no extents for a disk of nonzero size");

  ImageInfo& info = dev->info_;
  info.filename = path;
  info.format = "vmdk";
  info.subformat = desc.create_type;
  info.virtual_size = dev->size_;
  info.cluster_size = grain_bytes;
  info.compression = compressed ? "deflate" : "";
  if (!version) version = std::atoi(desc.version.c_str());
  info.version = version;
  info.dirty = dirty;
  info.actual_size = file->AllocatedBytes();
  for (const auto& f : files) {
    info.files.push_back(f->path());
    if (f->path() != path) info.actual_size += f->AllocatedBytes();
  }
  info.specific.insert(info.specific.begin(), {"create-type", desc.create_type});
  info.specific.insert(info.specific.begin() + 1, {"cid", hex32(desc.cid)});
  info.specific.insert(info.specific.begin() + 2, {"parent-cid", hex32(desc.parent_cid)});
  if (auto a = desc.get("ddb.adapterType"); !a.empty()) info.specific.emplace_back("adapter-type", a);
  if (auto hw = desc.get("ddb.virtualHWVersion"); !hw.empty()) info.specific.emplace_back("hardware-version", hw);

  if (desc.has_parent()) {
    if (desc.parent_file_name_hint.empty())
      return Status::Corrupt("'" + path + "': parentCID is " + hex32(desc.parent_cid) +
                             " but the descriptor has no parentFileNameHint naming the parent disk");
    VDKIT_ASSIGN_OR_RETURN(std::string ppath,
                           resolve_reference(ctx, dir_of(path), desc.parent_file_name_hint, "parent disk"));
    VDKIT_ASSIGN_OR_RETURN(dev->parent_, open_chained_image(ctx, ppath, "", "parent disk"));
    const ImageInfo& pi = dev->parent_->info();
    if (pi.format == "vmdk" && desc.has_parent_cid) {
      std::string pcid;
      for (const auto& [k, v] : pi.specific) {
        if (k == "cid") pcid = v;
      }
      if (lower(pcid) != hex32(desc.parent_cid))
        return Status::Corrupt("'" + path + "': parentCID " + hex32(desc.parent_cid) + " does not match the CID " +
                               pcid + " of parent disk '" + ppath +
                               "': the parent changed after this snapshot was taken");
    }
    info.backing_filename = desc.parent_file_name_hint;
    info.backing_format = pi.format;
    info.backing_resolved = ppath;
    info.backing = std::make_shared<ImageInfo>(pi);
  }
  return BlockDevicePtr(std::move(dev));
}

}  // namespace vdkit
