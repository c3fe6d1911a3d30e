// Qcow2L2Cache: the ShardedLru of decoded L2 tables, so concurrent readers rarely touch metadata on disk.
#pragma once

#include <cstdint>

#include "blockcore/base/sharded_lru.h"

namespace vdkit::qcow2 {

// An L2 table in host byte order (two words per entry with extended L2), keyed
// by its host offset. The newest table of a shard is always kept, even when it
// alone is over the shard's share of the bound.
using L2Table = ShardedLru<uint64_t>::Value;

class Qcow2L2Cache : public ShardedLru<uint64_t> {
 public:
  explicit Qcow2L2Cache(size_t capacity_bytes) : ShardedLru(capacity_bytes, Shape{3, 9, true}) {}
};

}  // namespace vdkit::qcow2
