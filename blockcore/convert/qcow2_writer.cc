// qcow2 v3 target writer: sequential layout, exact 16-bit refcounts, raw-deflate or zstd compressed clusters.
#include "blockcore/convert/qcow2_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <vector>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "blockcore/qcow2/qcow2_format.h"
#include "blockcore/io/io_engine.h"
#include "blockcore/convert/raw_writer.h"

namespace vdkit {

namespace {

constexpr uint64_t kCopied = 1ull << 63;
constexpr uint64_t kCompressedFlag = 1ull << 62;
constexpr uint64_t kHostOffsetLimit = 1ull << 56;  // L1/L2 host offsets are bits 9-55
constexpr uint32_t kRefcountOrder = 4;             // 16-bit refcounts, QEMU's default
constexpr uint64_t kMaxRefcount = 0xffff;
constexpr uint64_t kSparseBlock = 4096;  // file-system block: zero blocks of a cluster are left unwritten

uint64_t align_up(uint64_t v, uint64_t a) { return div_round_up(v, a) * a; }

// Everything both writers share: geometry, refcounts, the header and the tables.
class Qcow2Layout {
 public:
  explicit Qcow2Layout(const Qcow2WriterOptions& o) : opts(o), cs(o.cluster_size) {
    cluster_bits = static_cast<uint32_t>(__builtin_ctzll(cs));
    l2_entries = cs / 8;
    csize_shift = 62 - (cluster_bits - 8);
  }

  static Status check_options(const Qcow2WriterOptions& o) {
    if (!is_power_of_two(o.cluster_size) || o.cluster_size < kQcow2MinClusterSize ||
        o.cluster_size > kQcow2MaxClusterSize)
      return Status::Invalid("cluster size " + std::to_string(o.cluster_size) +
                             " is not a power of two between 512 and 2 MiB");
    if (o.codec != Codec::kDeflate && o.codec != Codec::kZstd)
      return Status::Invalid("qcow2 compresses clusters with zlib (raw deflate) or zstd only");
    return Status::Ok();
  }

  Status set_size(uint64_t size) {
    virtual_size = size;
    uint64_t clusters = div_round_up(size, cs);
    l1_size = div_round_up(clusters, l2_entries);
    if (l1_size * 8 > kQcow2MaxL1Bytes)
      return Status::Invalid("a virtual size of " + std::to_string(size) + " bytes needs an L1 table of " +
                             std::to_string(l1_size * 8) + " bytes, over the limit of " +
                             std::to_string(kQcow2MaxL1Bytes) + " (use a larger --cluster-size)");
    return Status::Ok();
  }

  uint64_t l1_clusters() const { return std::max<uint64_t>(1, div_round_up(l1_size * 8, cs)); }

  // Given `other` clusters (all but the refcount structures), how many
  // refcount blocks and table clusters cover everything, themselves included.
  void size_refcounts(uint64_t other, uint64_t& blocks, uint64_t& table) const {
    const uint64_t per_block = cs * 8 / (1u << kRefcountOrder);
    blocks = 1;
    table = 1;
    for (;;) {
      uint64_t total = other + blocks + table;
      uint64_t nb = div_round_up(total, per_block);
      uint64_t nt = std::max<uint64_t>(1, div_round_up(nb * 8, cs));
      if (nb <= blocks && nt <= table) return;
      blocks = std::max(blocks, nb);
      table = std::max(table, nt);
    }
  }

  Status ref(uint64_t cluster) {
    if (cluster >= refs.size()) refs.resize(std::max<uint64_t>(cluster + 1, refs.size() * 3 / 2), 0);
    if (refs[cluster] >= kMaxRefcount)
      return Status::IoError("internal error: refcount of cluster " + std::to_string(cluster) + " overflows");
    ++refs[cluster];
    return Status::Ok();
  }
  // Counts a compressed run [off, off+len) in every cluster it touches.
  Status ref_bytes(uint64_t off, uint64_t len) {
    for (uint64_t c = off / cs; c <= (off + len - 1) / cs; ++c) VDKIT_RETURN_IF_ERROR(ref(c));
    return Status::Ok();
  }

  uint64_t compressed_entry(uint64_t off, uint64_t len) const {
    uint64_t sectors = ((off + len - 1) >> 9) - (off >> 9);
    return kCompressedFlag | (sectors << csize_shift) | off;
  }

  Status check_host(uint64_t end) const {
    if (end >= kHostOffsetLimit || end >= (1ull << csize_shift))
      return Status::Invalid("the qcow2 target would grow past the largest host offset the format can address");
    return Status::Ok();
  }

  std::vector<uint8_t> header() const {
    qcow2::NewImageLayout l;
    l.cluster_bits = cluster_bits;
    l.size = virtual_size;
    l.l1_size = static_cast<uint32_t>(l1_size);
    l.l1_table_offset = l1_offset;
    l.refcount_table_offset = rt_offset;
    l.refcount_table_clusters = static_cast<uint32_t>(rt_clusters);
    l.zstd = opts.compress && opts.codec == Codec::kZstd;
    return qcow2::encode_v3_header(l);
  }

  std::vector<uint8_t> l1_bytes() const {
    std::vector<uint8_t> b(l1_clusters() * cs, 0);
    for (uint64_t i = 0; i < l1.size() && i < l1_size; ++i) store_be64(&b[i * 8], l1[i]);
    return b;
  }
  std::vector<uint8_t> rt_bytes() const {
    std::vector<uint8_t> b(rt_clusters * cs, 0);
    for (uint64_t i = 0; i < rb_count; ++i) store_be64(&b[i * 8], rb_offset + i * cs);
    return b;
  }
  // Refcount block k as bytes.
  void rb_bytes(uint64_t k, std::vector<uint8_t>& b) const {
    const uint64_t per_block = cs / 2;
    b.assign(cs, 0);
    for (uint64_t i = 0; i < per_block; ++i) {
      uint64_t c = k * per_block + i;
      if (c < refs.size() && refs[c]) store_be16(&b[i * 2], refs[c]);
    }
  }

  // Places the refcount table and blocks after `other` clusters and counts them.
  Status place_refcounts(uint64_t other) {
    size_refcounts(other, rb_count, rt_clusters);
    rt_offset = other * cs;
    rb_offset = rt_offset + rt_clusters * cs;
    total_clusters = other + rt_clusters + rb_count;
    VDKIT_RETURN_IF_ERROR(check_host(total_clusters * cs));
    for (uint64_t c = other; c < total_clusters; ++c) VDKIT_RETURN_IF_ERROR(ref(c));
    refs.resize(total_clusters, 0);
    return Status::Ok();
  }

  Qcow2WriterOptions opts;
  uint64_t cs;
  uint32_t cluster_bits;
  uint64_t l2_entries;
  uint32_t csize_shift;
  uint64_t virtual_size = 0;
  uint64_t l1_size = 0;
  uint64_t l1_offset = 0;
  uint64_t rt_offset = 0, rt_clusters = 0;
  uint64_t rb_offset = 0, rb_count = 0;
  uint64_t total_clusters = 0;
  std::vector<uint64_t> l1;
  std::vector<uint16_t> refs;  // per host cluster
};

// How far ahead of the data the qcow2 file sink keeps the file's size.
constexpr uint64_t kGrowAhead = 256u << 20;

// One pass to a seekable file: data and L2 tables appended in order, the rest at the end.
class Qcow2FileSink final : public ConvertSink {
 public:
  Qcow2FileSink(std::unique_ptr<TargetFile> file, const Qcow2WriterOptions& o) : file_(std::move(file)), lay_(o) {}
  uint64_t granularity() const override { return lay_.cs; }
  bool wants_compression() const override { return lay_.opts.compress; }
  Codec codec() const override { return lay_.opts.codec; }

  Status begin(uint64_t) override {
    end_ = lay_.cs;  // cluster 0: the header, written last
    return lay_.ref(0);
  }

  Status put(const ConvertChunk& c) override {
    reqs_.clear();
    meta_.clear();
    const uint64_t cs = lay_.cs;
    for (uint64_t u = 0; u < c.used.size(); ++u) {
      if (!c.used[u]) continue;
      uint64_t vcluster = (c.offset + u * cs) / cs;
      uint64_t l2i = vcluster / lay_.l2_entries;
      if (l2i != cur_l2_) VDKIT_RETURN_IF_ERROR(switch_l2(l2i));
      uint64_t entry;
      const uint8_t* src;
      uint64_t len;
      if (!c.packed.empty() && !c.packed[u].empty()) {
        len = c.packed[u].size();
        src = c.packed[u].data();
        uint64_t off = end_;
        VDKIT_RETURN_IF_ERROR(lay_.check_host(off + len));
        VDKIT_RETURN_IF_ERROR(lay_.ref_bytes(off, len));
        entry = lay_.compressed_entry(off, len);
        end_ += len;
        reqs_.push_back(IoRequest{-1, const_cast<uint8_t*>(src), len, off, true, 0});
      } else {
        VDKIT_ASSIGN_OR_RETURN(uint64_t off, alloc_cluster());
        entry = off | kCopied;
        len = queue_sparse(off, c.data.data() + u * cs, cs);
      }
      l2_[vcluster % lay_.l2_entries] = entry;
      written_ += len;
    }
    // The L2 tables this chunk finished stay alive as long as its writes.
    in_flight_meta_.push_back(std::move(meta_));
    grow_ahead(end_);
    return file_->write_async(reqs_);
  }
  size_t puts_in_flight() const override { return kFileChunksInFlight; }
  Status settle(size_t n) override {
    Status st = file_->settle(n);
    while (in_flight_meta_.size() > n) in_flight_meta_.pop_front();
    return st;
  }

  Status finish(uint64_t size) override {
    VDKIT_RETURN_IF_ERROR(settle(0));
    VDKIT_RETURN_IF_ERROR(lay_.set_size(size));
    reqs_.clear();
    meta_.clear();
    VDKIT_RETURN_IF_ERROR(switch_l2(UINT64_MAX));
    if (!reqs_.empty()) VDKIT_RETURN_IF_ERROR(file_->write(reqs_));
    if (lay_.l1.size() > lay_.l1_size) return Status::IoError("internal error: data mapped past the virtual size");
    const uint64_t cs = lay_.cs;
    end_ = align_up(end_, cs);
    lay_.l1_offset = end_;
    uint64_t other = end_ / cs + lay_.l1_clusters();
    for (uint64_t c = end_ / cs; c < other; ++c) VDKIT_RETURN_IF_ERROR(lay_.ref(c));
    VDKIT_RETURN_IF_ERROR(lay_.place_refcounts(other));
    VDKIT_RETURN_IF_ERROR(write(lay_.l1_offset, lay_.l1_bytes()));
    VDKIT_RETURN_IF_ERROR(write(lay_.rt_offset, lay_.rt_bytes()));
    std::vector<uint8_t> b;
    for (uint64_t k = 0; k < lay_.rb_count; ++k) {
      lay_.rb_bytes(k, b);
      VDKIT_RETURN_IF_ERROR(write(lay_.rb_offset + k * cs, b));
    }
    VDKIT_RETURN_IF_ERROR(file_->file().Truncate(lay_.total_clusters * cs));
    if (lay_.opts.sync) VDKIT_RETURN_IF_ERROR(file_->file().Sync());
    // The header last: until here the file is not a valid image.
    VDKIT_RETURN_IF_ERROR(write(0, lay_.header()));
    if (lay_.opts.sync) VDKIT_RETURN_IF_ERROR(file_->file().Sync());
    return Status::Ok();
  }
  uint64_t bytes_written() const override { return written_; }

 private:
  Result<uint64_t> alloc_cluster() {
    end_ = align_up(end_, lay_.cs);
    uint64_t off = end_;
    VDKIT_RETURN_IF_ERROR(lay_.check_host(off + lay_.cs));
    end_ += lay_.cs;
    VDKIT_RETURN_IF_ERROR(lay_.ref(off / lay_.cs));
    return off;
  }

  // Keeps the file's size ahead of the data. An O_DIRECT write that extends
  // the file is serialised by the file system (and through io_uring handed to
  // a worker thread); one inside it is not: streamOptimized guest to qcow2 went
  // from 0.40 to 0.30 s. finish() cuts the file to its end. A refusal (a file
  // size limit) costs only the speed.
  void grow_ahead(uint64_t end) {
    if (end <= sized_) return;
    const uint64_t want = align_up(end + kGrowAhead, lay_.cs);
    sized_ = file_->file().Truncate(want).ok() ? want : UINT64_MAX;
  }

  // Queues writes of the non-zero 4 KiB blocks of [p, p+len) at off: the file
  // is new, so zero blocks inside a cluster stay holes, as QEMU leaves them.
  uint64_t queue_sparse(uint64_t off, const uint8_t* p, uint64_t len) {
    const uint64_t blk = std::min(kSparseBlock, len);
    uint64_t queued = 0;
    for (uint64_t i = 0; i < len;) {
      if (is_all_zero(p + i, blk)) {
        i += blk;
        continue;
      }
      uint64_t j = i + blk;
      while (j < len && !is_all_zero(p + j, blk)) j += blk;
      reqs_.push_back(IoRequest{-1, const_cast<uint8_t*>(p + i), j - i, off + i, true, 0});
      queued += j - i;
      i = j;
    }
    return queued;
  }

  Status write(uint64_t off, const std::vector<uint8_t>& b) {
    reqs_.clear();
    written_ += queue_sparse(off, b.data(), b.size());
    if (reqs_.empty()) return Status::Ok();
    return file_->write(reqs_);
  }

  // Writes the current L2 table (if any) and starts table `next`.
  Status switch_l2(uint64_t next) {
    if (cur_l2_ != UINT64_MAX) {
      VDKIT_ASSIGN_OR_RETURN(uint64_t off, alloc_cluster());
      auto buf = std::make_unique<std::vector<uint8_t>>(lay_.cs, 0);
      for (uint64_t i = 0; i < lay_.l2_entries; ++i) store_be64(buf->data() + i * 8, l2_[i]);
      if (lay_.l1.size() <= cur_l2_) lay_.l1.resize(cur_l2_ + 1, 0);
      lay_.l1[cur_l2_] = off | kCopied;
      written_ += queue_sparse(off, buf->data(), lay_.cs);
      meta_.push_back(std::move(buf));
    }
    cur_l2_ = next;
    l2_.assign(lay_.l2_entries, 0);
    return Status::Ok();
  }

  std::unique_ptr<TargetFile> file_;
  Qcow2Layout lay_;
  uint64_t end_ = 0;  // next free host byte
  uint64_t cur_l2_ = UINT64_MAX;
  std::vector<uint64_t> l2_;
  std::vector<IoRequest> reqs_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> meta_;  // L2 buffers alive until submitted
  std::deque<std::vector<std::unique_ptr<std::vector<uint8_t>>>> in_flight_meta_;  // per put still in flight
  uint64_t sized_ = 0;  // the file's size as grow_ahead() set it (UINT64_MAX: refused, not tried again)
  uint64_t written_ = 0;
};

// To a pipe: plan() records which clusters hold data (and their compressed
// sizes); begin() writes header, L1, refcounts and every L2 table; put()
// then streams the data in the planned order. In place (a device, an NBD
// export): the same order, with the header last and a size limit.
class Qcow2StreamSink final : public ConvertSink {
 public:
  Qcow2StreamSink(std::unique_ptr<SequentialOut> out, std::string name, const Qcow2WriterOptions& o,
                  bool in_place = false, const Qcow2InPlaceOptions& place = {})
      : out_(std::move(out)), name_(std::move(name)), lay_(o), in_place_(in_place), place_(place) {}
  uint64_t granularity() const override { return lay_.cs; }
  bool wants_compression() const override { return lay_.opts.compress; }
  Codec codec() const override { return lay_.opts.codec; }
  bool needs_plan() const override { return true; }

  Status plan(const ConvertChunk& c) override {
    for (uint64_t u = 0; u < c.used.size(); ++u) {
      if (!c.used[u]) continue;
      uint64_t vcluster = (c.offset + u * lay_.cs) / lay_.cs;
      if (vcluster >= alloc_.size()) alloc_.resize(std::max<uint64_t>(vcluster + 1, alloc_.size() * 2), false);
      alloc_[vcluster] = true;
      sizes_.push_back(!c.packed.empty() ? static_cast<uint32_t>(c.packed[u].size()) : 0);
    }
    return Status::Ok();
  }

  Status end_plan(uint64_t size) override {
    VDKIT_RETURN_IF_ERROR(lay_.set_size(size));
    const uint64_t cs = lay_.cs;
    alloc_.resize(lay_.l1_size * lay_.l2_entries, false);
    // Which L2 tables exist.
    l2_present_.assign(lay_.l1_size, 0);
    uint64_t n_l2 = 0;
    for (uint64_t v = 0; v < alloc_.size(); ++v) {
      if (alloc_[v] && !l2_present_[v / lay_.l2_entries]) {
        l2_present_[v / lay_.l2_entries] = 1;
        ++n_l2;
      }
    }
    // Data bytes, relative to a cluster-aligned start.
    uint64_t data = 0;
    for (uint32_t s : sizes_) data = s ? data + s : align_up(data, cs) + cs;
    uint64_t data_clusters = div_round_up(data, cs);
    lay_.l1_offset = cs;
    l2_start_ = (1 + lay_.l1_clusters()) * cs;
    data_start_ = l2_start_ + n_l2 * cs;
    uint64_t other = data_start_ / cs + data_clusters;
    // Shift the L2 tables and data past the refcount structures, which go after the L1 table.
    uint64_t rb, rt;
    lay_.size_refcounts(other, rb, rt);
    uint64_t shift = (rb + rt) * cs;
    l2_start_ += shift;
    data_start_ += shift;
    lay_.rt_offset = (1 + lay_.l1_clusters()) * cs;
    lay_.rt_clusters = rt;
    lay_.rb_offset = lay_.rt_offset + rt * cs;
    lay_.rb_count = rb;
    lay_.total_clusters = other + rb + rt;
    VDKIT_RETURN_IF_ERROR(lay_.check_host(lay_.total_clusters * cs));
    if (place_.max_end && lay_.total_clusters * cs > place_.max_end)
      return Status::Error(ENOSPC, "the qcow2 image would end at byte " + std::to_string(lay_.total_clusters * cs) +
                                       ", past the end of '" + name_ + "' (" + std::to_string(place_.max_end) +
                                       " bytes); nothing was written");
    lay_.refs.assign(lay_.total_clusters, 0);
    for (uint64_t c = 0; c < data_start_ / cs; ++c) VDKIT_RETURN_IF_ERROR(lay_.ref(c));
    // L1 entries and data refcounts, walking the plan in order.
    lay_.l1.assign(lay_.l1_size, 0);
    uint64_t k = 0;
    for (uint64_t i = 0; i < lay_.l1_size; ++i)
      if (l2_present_[i]) lay_.l1[i] = (l2_start_ + (k++) * cs) | kCopied;
    uint64_t pos = data_start_;
    for (uint32_t s : sizes_) {
      if (s) {
        VDKIT_RETURN_IF_ERROR(lay_.ref_bytes(pos, s));
        pos += s;
      } else {
        pos = align_up(pos, cs);
        VDKIT_RETURN_IF_ERROR(lay_.ref(pos / cs));
        pos += cs;
      }
    }
    return Status::Ok();
  }

  Status begin(uint64_t) override {
    const uint64_t cs = lay_.cs;
    // In place, cluster 0 is zeros until finish(): the old bytes of a device
    // may hold an image header of their own.
    VDKIT_RETURN_IF_ERROR(in_place_ ? out_->zeros_to(cs) : out_->write_all(lay_.header()));
    VDKIT_RETURN_IF_ERROR(out_->write_all(lay_.l1_bytes()));
    VDKIT_RETURN_IF_ERROR(out_->write_all(lay_.rt_bytes()));
    std::vector<uint8_t> b;
    for (uint64_t k = 0; k < lay_.rb_count; ++k) {
      lay_.rb_bytes(k, b);
      VDKIT_RETURN_IF_ERROR(out_->write_all(b));
    }
    // L2 tables, in L1 order, with the data offsets the plan gives.
    uint64_t pos = data_start_;
    size_t si = 0;
    for (uint64_t i = 0; i < lay_.l1_size; ++i) {
      if (!l2_present_[i]) continue;
      b.assign(cs, 0);
      for (uint64_t j = 0; j < lay_.l2_entries; ++j) {
        if (!alloc_[i * lay_.l2_entries + j]) continue;
        uint32_t s = sizes_[si++];
        uint64_t e;
        if (s) {
          e = lay_.compressed_entry(pos, s);
          pos += s;
        } else {
          pos = align_up(pos, cs);
          e = pos | kCopied;
          pos += cs;
        }
        store_be64(&b[j * 8], e);
      }
      VDKIT_RETURN_IF_ERROR(out_->write_all(b));
    }
    if (out_->pos() != data_start_)
      return Status::IoError("internal error: qcow2 metadata does not end where data starts");
    next_size_ = 0;
    reached_ = place_.start;
    if (place_.start == 0) return Status::Ok();
    // A resumed run: skip the clusters below `start`, which are on the target already.
    pos = data_start_;
    const uint64_t first = place_.start / cs;
    for (uint64_t v = 0; v < first && v < alloc_.size(); ++v) {
      if (!alloc_[v]) continue;
      uint32_t s = sizes_[next_size_++];
      pos = s ? pos + s : align_up(pos, cs) + cs;
    }
    return out_->seek(pos);
  }

  Status put(const ConvertChunk& c) override {
    const uint64_t cs = lay_.cs;
    for (uint64_t u = 0; u < c.used.size(); ++u) {
      if (!c.used[u]) continue;
      uint64_t vcluster = (c.offset + u * cs) / cs;
      uint32_t s = (!c.packed.empty()) ? static_cast<uint32_t>(c.packed[u].size()) : 0;
      if (vcluster >= alloc_.size() || !alloc_[vcluster] || next_size_ >= sizes_.size() || sizes_[next_size_] != s)
        return Status::IoError("the source read differently on the second pass (at offset " +
                               std::to_string(vcluster * cs) +
                               "); a qcow2 laid out for a pipe needs a source that does not change");
      ++next_size_;
      if (s) {
        VDKIT_RETURN_IF_ERROR(out_->write_all(c.packed[u].data(), s));
      } else {
        VDKIT_RETURN_IF_ERROR(out_->zeros_to(align_up(out_->pos(), cs)));
        VDKIT_RETURN_IF_ERROR(out_->write_all(c.data.data() + u * cs, cs));
      }
    }
    reached_ = c.offset + c.length;
    return Status::Ok();
  }

  Status finish(uint64_t) override {
    if (next_size_ != sizes_.size())
      return Status::IoError("the source read differently on the second pass: " +
                             std::to_string(sizes_.size() - next_size_) + " planned clusters never came");
    VDKIT_RETURN_IF_ERROR(out_->zeros_to(lay_.total_clusters * lay_.cs));
    if (!in_place_) return Status::Ok();
    // Everything the header points at is durable before the header is written.
    VDKIT_RETURN_IF_ERROR(out_->flush());
    VDKIT_RETURN_IF_ERROR(out_->write_at(0, lay_.header()));
    return out_->flush();
  }
  uint64_t bytes_written() const override { return out_->pos(); }

  Result<uint64_t> flush_reached() override {
    if (!in_place_) return ConvertSink::flush_reached();
    VDKIT_RETURN_IF_ERROR(out_->flush());
    return reached_;
  }

 private:
  std::unique_ptr<SequentialOut> out_;
  std::string name_;
  Qcow2Layout lay_;
  bool in_place_;
  Qcow2InPlaceOptions place_;
  uint64_t reached_ = 0;
  std::vector<bool> alloc_;      // per virtual cluster: holds data
  std::vector<uint32_t> sizes_;  // per allocated cluster in order: compressed bytes, 0 = stored as is
  std::vector<uint8_t> l2_present_;
  uint64_t l2_start_ = 0, data_start_ = 0;
  size_t next_size_ = 0;
};

}  // namespace

Result<std::unique_ptr<ConvertSink>> make_qcow2_sink(int fd, const std::string& name, bool seekable,
                                                     const Qcow2WriterOptions& opts) {
  VDKIT_RETURN_IF_ERROR(Qcow2Layout::check_options(opts));
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return Status::FromErrno(errno, "duplicating the descriptor of '" + name + "'");
  if (seekable) return std::unique_ptr<ConvertSink>(new Qcow2FileSink(TargetFile::Open(d, name, opts.target_io), opts));
  return std::unique_ptr<ConvertSink>(new Qcow2StreamSink(std::make_unique<StreamWriter>(d, name), name, opts));
}

Result<std::unique_ptr<ConvertSink>> make_qcow2_in_place_sink(std::unique_ptr<SequentialOut> out,
                                                              const std::string& name, const Qcow2WriterOptions& opts,
                                                              const Qcow2InPlaceOptions& place) {
  VDKIT_RETURN_IF_ERROR(Qcow2Layout::check_options(opts));
  if (place.start % kConvertChunk != 0)
    return Status::Invalid("internal error: a resumed qcow2 must start on a chunk boundary");
  return std::unique_ptr<ConvertSink>(new Qcow2StreamSink(std::move(out), name, opts, true, place));
}

}  // namespace vdkit
