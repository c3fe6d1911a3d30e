// ShardedLru: the one bounded, sharded LRU of immutable buffers (inflated grains/clusters, qcow2 L2 tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace vdkit {

// Values are immutable vectors, so a hit can be used after the shard's lock is
// dropped even if the entry is evicted meanwhile; a writer replaces an entry
// with a modified copy. The byte bound is split evenly over the shards.
template <typename T>
class ShardedLru {
 public:
  using Value = std::shared_ptr<const std::vector<T>>;

  struct Shape {
    unsigned shard_bits = 4;   // 2^shard_bits shards
    unsigned key_shift = 0;    // low key bits that do not spread keys (qcow2 L2 offsets are 512-byte aligned)
    // An entry larger than a shard is kept anyway (the newest entry of a shard
    // is never evicted) instead of being refused: a driver that must have its
    // L2 table in hand prefers going over the bound to rereading it.
    bool keep_oversized = false;
  };

  ShardedLru(size_t capacity_bytes, Shape shape)
      : shape_(shape),
        capacity_(capacity_bytes),
        shard_capacity_(capacity_bytes >> shape.shard_bits),
        shards_(new Shard[size_t{1} << shape.shard_bits]) {}
  ShardedLru(const ShardedLru&) = delete;
  ShardedLru& operator=(const ShardedLru&) = delete;

  Value get(uint64_t key) {
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return nullptr;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->second;
  }

  void put(uint64_t key, Value value) {
    if (!value) return;
    if (!shape_.keep_oversized && (shard_capacity_ == 0 || bytes_of(value) > shard_capacity_)) return;
    Shard& s = shard(key);
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.map.find(key);
    if (it != s.map.end()) {
      s.bytes -= bytes_of(it->second->second);
      s.lru.erase(it->second);
      s.map.erase(it);
    }
    s.lru.emplace_front(key, std::move(value));
    s.map[key] = s.lru.begin();
    s.bytes += bytes_of(s.lru.front().second);
    const size_t keep = shape_.keep_oversized ? 1 : 0;
    while (s.bytes > shard_capacity_ && s.lru.size() > keep) {
      auto& victim = s.lru.back();
      s.bytes -= bytes_of(victim.second);
      s.map.erase(victim.first);
      s.lru.pop_back();
    }
  }

  size_t capacity() const { return capacity_; }
  size_t bytes() const {
    size_t total = 0;
    for (size_t i = 0; i < (size_t{1} << shape_.shard_bits); ++i) {
      std::lock_guard<std::mutex> lk(shards_[i].mu);
      total += shards_[i].bytes;
    }
    return total;
  }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::list<std::pair<uint64_t, Value>> lru;  // front = most recent
    std::unordered_map<uint64_t, typename std::list<std::pair<uint64_t, Value>>::iterator> map;
    size_t bytes = 0;
  };
  static size_t bytes_of(const Value& v) { return v->size() * sizeof(T); }
  // Fibonacci hashing: the top shard_bits bits of the product pick the shard.
  Shard& shard(uint64_t key) {
    return shards_[((key >> shape_.key_shift) * 0x9E3779B97F4A7C15ull) >> (64 - shape_.shard_bits)];
  }

  Shape shape_;
  size_t capacity_;
  size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace vdkit
