// Qcow2L2Cache: a bounded, sharded LRU of decoded L2 tables, so concurrent readers rarely touch metadata on disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vdkit::qcow2 {

// An L2 table in host byte order (two words per entry with extended L2). Immutable once
// cached: a writer replaces a table with a modified copy, so a reader holding the old one
// still sees a consistent table.
using L2Table = std::shared_ptr<const std::vector<uint64_t>>;

class Qcow2L2Cache {
 public:
  // capacity_bytes bounds the sum of the tables' sizes (at least one table per shard is kept).
  explicit Qcow2L2Cache(size_t capacity_bytes);
  Qcow2L2Cache(const Qcow2L2Cache&) = delete;
  Qcow2L2Cache& operator=(const Qcow2L2Cache&) = delete;

  // The table at host offset l2_offset, or null.
  L2Table get(uint64_t l2_offset);
  void put(uint64_t l2_offset, L2Table table);
  size_t bytes() const;

 private:
  static constexpr size_t kShards = 8;
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<uint64_t, L2Table>> lru;  // front = most recent
    std::unordered_map<uint64_t, std::list<std::pair<uint64_t, L2Table>>::iterator> map;
    size_t bytes = 0;
  };
  Shard& shard(uint64_t key) { return shards_[((key >> 9) * 0x9E3779B97F4A7C15ull) >> 61]; }
  size_t shard_capacity_;
  Shard shards_[kShards];
};

}  // namespace vdkit::qcow2
