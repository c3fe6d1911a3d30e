// ScratchLease: bytes for one read's compressed input, reused across reads on the same thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace vdkit {

// A conversion reads every chunk's compressed bytes into a temporary buffer. A fresh vector for each would be
// zeroed, and a big one page-faulted anew after glibc gave the last back to the kernel; a lease takes a buffer from
// the thread's free list instead and gives it back when it ends. The bytes are not initialised. Leases nest (a
// device reading its parent takes a second buffer), and a thread keeps a few buffers of moderate size only.
class ScratchLease {
 public:
  explicit ScratchLease(size_t bytes);
  ~ScratchLease();
  ScratchLease(const ScratchLease&) = delete;
  ScratchLease& operator=(const ScratchLease&) = delete;

  uint8_t* data() const { return block_->bytes.get(); }

  struct Block {
    std::unique_ptr<uint8_t[]> bytes;
    size_t capacity = 0;
  };

 private:
  std::unique_ptr<Block> block_;
};

}  // namespace vdkit
