// GrainCache: a bounded, sharded LRU of inflated grains/clusters shared by the compressed-format drivers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vdkit {

using GrainBuffer = std::shared_ptr<const std::vector<uint8_t>>;

// Keys are chosen by the driver (e.g. host offset of the compressed grain,
// combined with an id per file via make_key). Values are immutable buffers,
// so a hit can be used after the lock is dropped even if it is evicted.
class GrainCache {
 public:
  explicit GrainCache(size_t capacity_bytes);
  GrainCache(const GrainCache&) = delete;
  GrainCache& operator=(const GrainCache&) = delete;

  GrainBuffer get(uint64_t key);
  void put(uint64_t key, GrainBuffer value);
  size_t capacity() const { return capacity_; }
  size_t bytes() const;

  // A key from a small per-file id (up to 2^12 files) and a host offset (up to 2^52).
  static uint64_t make_key(uint32_t file_id, uint64_t offset) {
    return (static_cast<uint64_t>(file_id & 0xfff) << 52) | (offset & ((1ull << 52) - 1));
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<uint64_t, GrainBuffer>> lru;  // front = most recent
    std::unordered_map<uint64_t, std::list<std::pair<uint64_t, GrainBuffer>>::iterator> map;
    size_t bytes = 0;
  };
  Shard& shard(uint64_t key) { return shards_[(key * 0x9E3779B97F4A7C15ull) >> 60]; }
  size_t capacity_;
  size_t shard_capacity_;
  Shard shards_[kShards];
};

}  // namespace vdkit
