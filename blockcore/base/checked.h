// Overflow-checked arithmetic for values read from untrusted image metadata.
#pragma once

#include <cstdint>
#include <optional>

namespace vdkit {

// a + b, or nullopt on overflow.
inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a * b, or nullopt on overflow.
inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// True when [off, off+len) lies inside [0, limit) without overflow.
inline bool range_within(uint64_t off, uint64_t len, uint64_t limit) {
  auto end = checked_add(off, len);
  return end && *end <= limit;
}

inline uint64_t div_round_up(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }
inline bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
inline uint64_t align_down(uint64_t v, uint64_t a) { return v - v % a; }

}  // namespace vdkit
