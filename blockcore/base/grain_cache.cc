// GrainCache implementation: per-shard LRU lists with byte accounting.
#include "blockcore/base/grain_cache.h"

namespace vdkit {

GrainCache::GrainCache(size_t capacity_bytes)
    : capacity_(capacity_bytes), shard_capacity_(capacity_bytes / kShards) {}

GrainBuffer GrainCache::get(uint64_t key) {
  Shard& s = shard(key);
  std::lock_guard<std::mutex> lk(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void GrainCache::put(uint64_t key, GrainBuffer value) {
  if (!value || shard_capacity_ == 0 || value->size() > shard_capacity_) return;
  Shard& s = shard(key);
  std::lock_guard<std::mutex> lk(s.mu);
  auto it = s.map.find(key);
  if (it != s.map.end()) {
    s.bytes -= it->second->second->size();
    s.lru.erase(it->second);
    s.map.erase(it);
  }
  s.lru.emplace_front(key, std::move(value));
  s.map[key] = s.lru.begin();
  s.bytes += s.lru.front().second->size();
  while (s.bytes > shard_capacity_ && !s.lru.empty()) {
    auto& victim = s.lru.back();
    s.bytes -= victim.second->size();
    s.map.erase(victim.first);
    s.lru.pop_back();
  }
}

size_t GrainCache::bytes() const {
  size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lk(s.mu);
    total += s.bytes;
  }
  return total;
}

}  // namespace vdkit
