// ByteRanges: the one type for lists of {offset, length} byte ranges (partition-table areas, a file system's unused
// blocks, sparsify's mask), with the helpers every user of such a list needs.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace vdkit {

// {offset, length} byte ranges. Each producer says whether its list is sorted; normalize_ranges makes it so.
using ByteRanges = std::vector<std::pair<uint64_t, uint64_t>>;

// Sorts `ranges`, merges those that overlap or touch, clips them to [0, limit) and drops empty ones.
ByteRanges normalize_ranges(ByteRanges ranges, uint64_t limit);

// The first range of normalized `ranges` that ends after `offset` (end() when none): where a walk from `offset`
// starts.
ByteRanges::const_iterator first_ending_after(const ByteRanges& ranges, uint64_t offset);

// The bytes [offset, offset+length) has in common with normalized `ranges`.
uint64_t overlap_bytes(const ByteRanges& ranges, uint64_t offset, uint64_t length);

// Normalized `ranges` without any byte of `minus` (which need not be normalized), both clipped to [0, limit).
ByteRanges subtract_ranges(ByteRanges ranges, ByteRanges minus, uint64_t limit);

}  // namespace vdkit
