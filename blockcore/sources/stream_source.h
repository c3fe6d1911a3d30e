// Sources read once, front to back, from a pipe: a raw stream, or a streamOptimized VMDK read marker by marker.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/codec.h"
#include "blockcore/base/status.h"

namespace vdkit {

// One window of the disk taken off the stream: raw bytes, or compressed
// grains still to inflate (that work runs on a pipeline worker).
struct StreamPiece {
  uint64_t offset = 0;       // aligned to the window size asked for
  uint64_t length = 0;       // window length (the last window may be shorter)
  std::vector<uint8_t> raw;  // raw streams: `length` bytes
  struct Grain {
    uint64_t offset = 0;     // byte offset in the disk
    uint64_t length = 0;     // inflated length (a grain, clipped at the end of the disk)
    std::vector<uint8_t> z;  // compressed bytes
  };
  std::vector<Grain> grains;
  Codec codec = Codec::kZlib;
  uint64_t stream_bytes = 0;  // bytes taken off the stream for this piece
};

// Named limits for what a stream may ask of us.
inline constexpr uint64_t kMaxStreamGrainBytes = 1u << 20;  // a grain of at most 1 MiB (VMDK: 128 KiB max in practice)
inline constexpr uint64_t kMaxStreamMetadataBytes = 64u << 20;  // a GD/GT/footer marker's payload skipped at most

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // "raw stream" or "streamOptimized VMDK stream".
  virtual const char* kind() const = 0;
  // Virtual size; 0 for a raw stream until it has ended.
  virtual uint64_t size() const = 0;
  // Takes the next window holding data off the stream. `window` is a power of
  // two. Pieces come in increasing offset order; a stream whose grains go
  // backwards past a window already handed out is refused (it cannot be
  // converted front to back). Returns false at the end of the stream.
  virtual Result<bool> next(uint64_t window, StreamPiece& piece) = 0;
  // Bytes read from the stream so far.
  virtual uint64_t stream_bytes() const = 0;
};

// Inflates/copies a piece into out (out.size() bytes, zeroed by the caller,
// at least piece.length bytes). Thread-safe.
Status fill_from_piece(const StreamPiece& piece, std::span<uint8_t> out);

// Reads the start of fd to choose: a VMDK sparse header with the
// streamOptimized markers is read as one; anything else is a raw stream.
// fd stays owned by the caller. `name` is for messages ("standard input").
// cancel, when set by a signal handler, ends a read that a signal interrupted
// (a stalled upstream must not make Ctrl-C wait for more data) with ECANCELED.
Result<std::unique_ptr<StreamSource>> open_stream_source(int fd, const std::string& name,
                                                         const std::atomic<bool>* cancel = nullptr);

}  // namespace vdkit
