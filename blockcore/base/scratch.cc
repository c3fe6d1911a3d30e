// ScratchLease: a per-thread free list of uninitialised buffers.
#include "blockcore/base/scratch.h"

#include <vector>

namespace vdkit {

namespace {

// Kept per thread after a lease ends: enough for nested leases, and no buffer bigger than one read's compressed
// input usually needs (a 4 MiB convert chunk; a span is at most 8 MiB). The NBD plugin runs 16 server threads, and
// a bigger bound would let each keep what one 32 MiB client read needed; such a read allocates its own.
constexpr size_t kKeptBlocks = 4;
constexpr size_t kKeptBytes = 8u << 20;

thread_local std::vector<std::unique_ptr<ScratchLease::Block>> t_free;

}  // namespace

ScratchLease::ScratchLease(size_t bytes) {
  if (!t_free.empty()) {
    block_ = std::move(t_free.back());
    t_free.pop_back();
  } else {
    block_ = std::make_unique<Block>();
  }
  if (block_->capacity < bytes) {
    // new[] of a scalar type leaves the bytes uninitialised: the reads overwrite them.
    block_->bytes.reset(new uint8_t[bytes]);
    block_->capacity = bytes;
  }
}

ScratchLease::~ScratchLease() {
  if (t_free.size() < kKeptBlocks && block_->capacity <= kKeptBytes) t_free.push_back(std::move(block_));
}

}  // namespace vdkit
