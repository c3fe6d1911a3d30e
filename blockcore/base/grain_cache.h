// GrainCache: the ShardedLru of inflated grains/clusters shared by the compressed-format drivers.
#pragma once

#include <cstdint>

#include "blockcore/base/sharded_lru.h"

namespace vdkit {

using GrainBuffer = ShardedLru<uint8_t>::Value;

// Keys are chosen by the driver: the host offset of the compressed grain,
// combined with an id per file via make_key. Entries larger than a shard are
// not kept.
class GrainCache : public ShardedLru<uint8_t> {
 public:
  explicit GrainCache(size_t capacity_bytes) : ShardedLru(capacity_bytes, Shape{4, 0, false}) {}

  // A key from a small per-file id (up to 2^12 files) and a host offset (up to 2^52).
  static uint64_t make_key(uint32_t file_id, uint64_t offset) {
    return (static_cast<uint64_t>(file_id & 0xfff) << 52) | (offset & ((1ull << 52) - 1));
  }
};

}  // namespace vdkit
