// Internal to the VMDK driver: GrainMap, the grain directory and tables of one sparse extent (hosted or seSparse).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/grain_cache.h"
#include "blockcore/io/io_engine.h"
#include "blockcore/base/status.h"
#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit::vmdk {

enum class GrainState : uint8_t { kUnallocated, kZero, kData, kCompressed };

struct GrainLoc {
  GrainState state = GrainState::kUnallocated;
  uint64_t host = 0;  // byte offset in the extent file (kData: the grain; kCompressed: its marker or stream)
};

// Maps grain numbers of one extent to where they live. The grain directory is
// read and checked when the map is made; grain tables are read on demand and
// kept in a bounded GrainCache shared by the device. Thread-safe.
class GrainMap {
 public:
  virtual ~GrainMap() = default;
  uint64_t grain_bytes() const { return grain_bytes_; }
  bool compressed() const { return compressed_; }
  bool markers() const { return markers_; }
  const std::shared_ptr<File>& file() const { return file_; }
  uint64_t file_size() const { return file_size_; }
  // Bytes of grain directory held in memory (the device bounds the sum over its extents).
  uint64_t directory_bytes() const { return directory_bytes_; }
  // Appends the location of grains [first, first+count) to out. Every
  // location returned lies inside the file (checked here), so readers may trust it.
  virtual Status lookup(uint64_t first, uint64_t count, std::vector<GrainLoc>& out) = 0;
  // Grains one grain table covers, and whether the table covering `grain` exists
  // (when not, every grain it covers is unallocated: lets map skip it whole).
  virtual uint64_t grains_per_table() const = 0;
  virtual bool table_exists(uint64_t grain) const = 0;

 protected:
  GrainMap(std::shared_ptr<File> file, uint64_t file_size, uint32_t file_id, GrainCache* gt_cache)
      : file_(std::move(file)), file_size_(file_size), file_id_(file_id), gt_cache_(gt_cache) {}
  // A grain table's raw bytes through the cache (when file_id allows a key).
  Result<GrainBuffer> grain_table(uint64_t offset, size_t bytes);

  std::shared_ptr<File> file_;
  uint64_t file_size_;
  uint32_t file_id_;
  GrainCache* gt_cache_;
  uint64_t grain_bytes_ = 0;
  bool compressed_ = false;
  bool markers_ = false;
  uint64_t directory_bytes_ = 0;
};

// Ids at or above this share no cache (GrainCache keys hold 12 bits of file id).
inline constexpr uint32_t kMaxCachedFileId = 0xfff;

// A hosted sparse extent ("KDMV"): header (or stream footer), grain directory
// and 32-bit grain tables. `capacity_sectors` is how much of the extent the
// descriptor uses (must not exceed the header's capacity). When
// embedded_descriptor is non-null it receives the embedded descriptor text.
struct HostedSparse {
  SparseHeader header;
  std::unique_ptr<GrainMap> map;
  std::string embedded_descriptor;
};
Result<HostedSparse> open_hosted_sparse(std::shared_ptr<File> file, uint32_t file_id, GrainCache* gt_cache);
// Checks that a hosted sparse extent can serve `sectors` sectors of the disk.
Status check_capacity(const HostedSparse& s, uint64_t sectors, const std::string& where);

// An ESXi seSparse extent serving `sectors` sectors of the disk.
Result<std::unique_ptr<GrainMap>> open_sesparse(std::shared_ptr<File> file, uint32_t file_id, GrainCache* gt_cache,
                                                uint64_t sectors);

std::string hex_offset(uint64_t v);

}  // namespace vdkit::vmdk
