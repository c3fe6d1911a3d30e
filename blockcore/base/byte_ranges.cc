// ByteRanges helpers: normalizing, overlap and subtraction of {offset, length} lists.
#include "blockcore/base/byte_ranges.h"

#include <algorithm>

namespace vdkit {

ByteRanges normalize_ranges(ByteRanges ranges, uint64_t limit) {
  std::sort(ranges.begin(), ranges.end());
  ByteRanges out;
  for (auto [off, len] : ranges) {
    if (off >= limit || len == 0) continue;
    uint64_t end = len > limit - off ? limit : off + len;
    if (!out.empty() && off <= out.back().first + out.back().second) {
      uint64_t& l = out.back().second;
      l = std::max(l, end - out.back().first);
    } else {
      out.emplace_back(off, end - off);
    }
  }
  return out;
}

ByteRanges::const_iterator first_ending_after(const ByteRanges& r, uint64_t offset) {
  return std::upper_bound(r.begin(), r.end(), offset,
                          [](uint64_t o, const std::pair<uint64_t, uint64_t>& x) { return o < x.first + x.second; });
}

uint64_t overlap_bytes(const ByteRanges& ranges, uint64_t offset, uint64_t length) {
  const uint64_t end = offset + length;
  uint64_t n = 0;
  for (auto it = first_ending_after(ranges, offset); it != ranges.end() && it->first < end; ++it)
    n += std::min(end, it->first + it->second) - std::max(offset, it->first);
  return n;
}

ByteRanges subtract_ranges(ByteRanges ranges, ByteRanges minus, uint64_t limit) {
  ranges = normalize_ranges(std::move(ranges), limit);
  minus = normalize_ranges(std::move(minus), limit);
  ByteRanges out;
  auto m = minus.begin();
  for (auto [off, len] : ranges) {
    uint64_t pos = off;
    const uint64_t end = off + len;
    // Both lists are sorted and apart: the cuts of this range are the `minus` ranges that start before its end.
    while (m != minus.end() && m->first + m->second <= pos) ++m;
    for (auto c = m; c != minus.end() && c->first < end; ++c) {
      if (c->first > pos) out.emplace_back(pos, c->first - pos);
      pos = std::max(pos, c->first + c->second);
    }
    if (pos < end) out.emplace_back(pos, end - pos);
  }
  return out;
}

}  // namespace vdkit
