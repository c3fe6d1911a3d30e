// Qcow2Device: the qcow2 BlockDevice (reading in qcow2.cc, refcounts in qcow2_refcount.cc, writing in qcow2_write.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/codec.h"
#include "blockcore/base/grain_cache.h"
#include "blockcore/sources/image.h"
#include "blockcore/qcow2/qcow2_format.h"
#include "blockcore/qcow2/qcow2_l2_cache.h"

namespace vdkit::qcow2 {

// Lock order: write_mu_ before meta_mu_. Readers take meta_mu_ shared while they
// map guest ranges to host ranges (L1/L2 lookups, filling the L2 cache), then
// read data with no lock held. The one writer at a time (write_mu_) takes
// meta_mu_ exclusively only while it changes L1/L2 entries, so reads of other
// ranges go on during its data I/O. Freed clusters are never reused (new
// clusters are appended), so a reader holding an old mapping reads stale but
// valid bytes, never another range's data.
class Qcow2Device final : public BlockDevice {
 public:
  // Opens `file` as qcow2. When `backing` is given it is used as the backing
  // device (already opened by the caller, e.g. an overlay's source) instead of
  // opening the one the header names.
  static Result<BlockDevicePtr> Open(std::shared_ptr<File> file, const OpenContext& ctx,
                                     BlockDevicePtr backing = nullptr, std::string backing_resolved = {});

  enum class Kind : uint8_t { kNormal, kCompressed, kZero, kUnalloc };
  // A run of the guest disk that reads one way. kNormal: host is the host
  // offset of `guest` (in the data file). kCompressed: one cluster's part;
  // host/csize locate its compressed bytes, cluster_guest is the cluster's start.
  struct Segment {
    uint64_t guest = 0;
    uint64_t len = 0;
    Kind kind = Kind::kUnalloc;
    uint64_t host = 0;
    uint64_t csize = 0;
    uint64_t cluster_guest = 0;
  };

  uint64_t size() const override { return h_.size; }
  Status read(uint64_t offset, std::span<uint8_t> buf) override;
  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override;
  DeviceCaps caps() const override;
  Status write(uint64_t offset, std::span<const uint8_t> buf) override;
  Status zero(uint64_t offset, uint64_t length) override;
  Status trim(uint64_t offset, uint64_t length) override;
  Status flush() override;
  // Reads the range ahead (up to kMaxPrefetchBytes): fills the L2 and inflated-cluster caches and the page cache.
  Status prefetch(uint64_t offset, uint64_t length) override;
  const ImageInfo& info() const override { return info_; }

 private:
  Qcow2Device(std::shared_ptr<File> file, Header h, const OpenContext& ctx);
  Status open_tables();

  // Reading (qcow2.cc).
  Result<L2Table> load_l2(uint64_t l1_index, uint64_t l2_offset);
  Status map_range(uint64_t offset, uint64_t length, std::vector<Segment>& out);
  Status map_cluster(uint64_t l2_offset, uint64_t l2_index, uint64_t entry, uint64_t bitmap, uint64_t cluster_start,
                     uint64_t from, uint64_t to, std::vector<Segment>& out);
  Status read_segments(const std::vector<Segment>& segs, uint64_t base, uint8_t* dst);
  Status read_compressed(const std::vector<const Segment*>& segs, uint64_t base, uint8_t* dst);
  Status read_backing(uint64_t offset, uint64_t length, uint8_t* dst);
  void build_info(const OpenContext& ctx);

  // Refcounts and allocation (qcow2_refcount.cc); all under write_mu_.
  Status load_refcount_table();
  Result<std::vector<uint8_t>*> refblock(uint64_t block_index);
  Status ensure_refblock(uint64_t block_index);
  Status grow_refcount_table(uint64_t min_entries);
  // Adds delta to the refcounts of `count` clusters from cluster index `first`;
  // the results must stay within 0..max (else EINVAL naming the cluster).
  Status adjust_refcounts(uint64_t first, uint64_t count, int delta);
  Result<uint64_t> alloc_clusters(uint64_t count);
  // Drops the reference an L2 entry holds (normal, zero-allocated or compressed).
  Status release_entry(uint64_t entry);

  // Writing (qcow2_write.cc); all under write_mu_.
  Result<uint64_t> ensure_l2(uint64_t l1_index, bool allocate);
  Status write_locked(uint64_t offset, const uint8_t* data, uint64_t length);
  Status set_l2_entries(uint64_t l2_offset, uint64_t first_index, const std::vector<uint64_t>& entries,
                        const std::vector<uint64_t>& bitmaps);
  Status zero_locked(uint64_t offset, uint64_t length);
  Status write_header_field(uint64_t offset, const void* bytes, size_t len);
  void note_file_end(uint64_t end);

  Header h_;
  std::shared_ptr<File> file_;
  std::shared_ptr<File> data_file_;  // == file_ without an external data file
  std::string data_file_resolved_;
  BlockDevicePtr backing_;
  std::string backing_resolved_;
  uint64_t backing_size_ = 0;
  Codec codec_ = Codec::kDeflate;
  bool writable_ = false;
  uint32_t l2_entries_ = 0;  // entries per L2 table
  uint32_t words_ = 1;       // 64-bit words per L2 entry

  std::vector<uint64_t> l1_;  // host order, guarded by meta_mu_
  Qcow2L2Cache l2_cache_;
  GrainCache grain_cache_;
  std::atomic<uint64_t> file_size_{0};
  std::atomic<uint64_t> data_size_{0};
  ImageInfo info_;

  mutable std::shared_mutex meta_mu_;
  std::mutex write_mu_;
  // Writer state, guarded by write_mu_.
  std::vector<uint64_t> reftable_;
  std::unordered_map<uint64_t, std::vector<uint8_t>> refblocks_;  // block index -> bytes
  uint64_t next_free_ = 0;                                        // next cluster to allocate (bytes)
};

}  // namespace vdkit::qcow2
