// Qcow2L2Cache implementation: per-shard LRU lists with byte accounting.
#include "blockcore/qcow2/qcow2_l2_cache.h"

namespace vdkit::qcow2 {

Qcow2L2Cache::Qcow2L2Cache(size_t capacity_bytes) : shard_capacity_(capacity_bytes / kShards) {}

L2Table Qcow2L2Cache::get(uint64_t l2_offset) {
  Shard& s = shard(l2_offset);
  std::lock_guard<std::mutex> lk(s.mu);
  auto it = s.map.find(l2_offset);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void Qcow2L2Cache::put(uint64_t l2_offset, L2Table table) {
  if (!table) return;
  Shard& s = shard(l2_offset);
  std::lock_guard<std::mutex> lk(s.mu);
  auto it = s.map.find(l2_offset);
  if (it != s.map.end()) {
    s.bytes -= it->second->second->size() * 8;
    s.lru.erase(it->second);
    s.map.erase(it);
  }
  s.lru.emplace_front(l2_offset, std::move(table));
  s.map[l2_offset] = s.lru.begin();
  s.bytes += s.lru.front().second->size() * 8;
  // Evict from the cold end, but always keep the table just added.
  while (s.bytes > shard_capacity_ && s.lru.size() > 1) {
    auto& victim = s.lru.back();
    s.bytes -= victim.second->size() * 8;
    s.map.erase(victim.first);
    s.lru.pop_back();
  }
}

size_t Qcow2L2Cache::bytes() const {
  size_t total = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lk(s.mu);
    total += s.bytes;
  }
  return total;
}

}  // namespace vdkit::qcow2
