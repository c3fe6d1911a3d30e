// The streaming convert pipeline: reads a source (BlockDevice or a front-to-back stream) and writes a sparse target.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/codec.h"
#include "blockcore/sources/image.h"
#include "blockcore/base/status.h"

namespace vdkit {

class StreamSource;

// Zero detection works on blocks of this size: a 4 KiB block of zeros inside
// data is left as a hole (what `qemu-img convert -S 4k`, its default, does).
inline constexpr uint64_t kZeroBlock = 4096;
// The unit of work of the pipeline (read, zero detection, compression) when
// the target's allocation unit is smaller.
inline constexpr uint64_t kConvertChunk = 4u << 20;
// How many bytes of source data may be read ahead of the writer.
inline constexpr uint64_t kDefaultInflightBytes = 48u << 20;
// Extents are asked for in windows of this many bytes, so a huge sparse
// source never builds a huge extent list.
inline constexpr uint64_t kExtentWindow = 1ull << 30;

// Chunk buffers start on this boundary, so a sink may hand their bytes to
// O_DIRECT writes (which need the buffer aligned to the device's block).
inline constexpr size_t kChunkBufferAlign = 4096;

// Buffers of at least this size are placed on huge-page boundaries and offered to transparent huge pages.
inline constexpr size_t kHugeChunkBytes = 2u << 20;

// Asks for transparent huge pages over [p, p + n) where the kernel has them (madvise mode); a no-op elsewhere.
void advise_huge_pages(void* p, size_t n);

// The allocator of chunk buffers: new/delete on kChunkBufferAlign, and on a huge-page boundary with transparent
// huge pages for big buffers: a 4 MiB chunk then costs two page faults instead of 1024, and pinning it for an
// O_DIRECT write walks two entries.
template <class T>
struct ChunkBufferAllocator {
  using value_type = T;
  ChunkBufferAllocator() = default;
  template <class U>
  ChunkBufferAllocator(const ChunkBufferAllocator<U>&) {}
  static size_t align_for(size_t bytes) { return bytes >= kHugeChunkBytes ? kHugeChunkBytes : kChunkBufferAlign; }
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    void* p = ::operator new (bytes, std::align_val_t{align_for(bytes)});
    if (bytes >= kHugeChunkBytes) advise_huge_pages(p, bytes);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) { ::operator delete (p, std::align_val_t{align_for(n * sizeof(T))}); }
  bool operator==(const ChunkBufferAllocator&) const { return true; }
};
using ChunkBuffer = std::vector<uint8_t, ChunkBufferAllocator<uint8_t>>;

// One piece of the virtual disk on its way to the target, handed to a
// ConvertSink in increasing offset order. offset is a multiple of the sink's
// granularity; data holds `length` bytes rounded up to the granularity (the
// padding past the end of the disk is zeros); data.data() is aligned to
// kChunkBufferAlign.
struct ConvertChunk {
  uint64_t offset = 0;
  uint64_t length = 0;
  ChunkBuffer data;
  // Per granularity unit: 1 when the unit holds a non-zero byte.
  std::vector<uint8_t> used;
  // With compression: per used unit, the compressed bytes; empty when the
  // unit did not shrink and is stored as it is.
  std::vector<std::vector<uint8_t>> packed;
};

// Where converted data goes (raw_writer.h, qcow2_writer.h). Calls come from
// one thread, in this order: [plan()..., end_plan()], begin(), put()...,
// finish(). A sink never sees holes or zero units: they are simply absent.
class ConvertSink {
 public:
  virtual ~ConvertSink() = default;
  // Allocation unit in bytes (4096 for raw, the cluster size for qcow2).
  virtual uint64_t granularity() const = 0;
  // Units should be compressed by the pipeline with this codec.
  virtual bool wants_compression() const { return false; }
  virtual Codec codec() const { return Codec::kDeflate; }
  // The sink must see every chunk once (plan) before any byte is written
  // (a qcow2 laid out in advance for a pipe). The source is then read twice.
  virtual bool needs_plan() const { return false; }
  virtual Status plan(const ConvertChunk&) { return Status::Ok(); }
  virtual Status end_plan(uint64_t /*size*/) { return Status::Ok(); }
  // size: the virtual size, or 0 when not known yet (a raw stream on stdin).
  virtual Status begin(uint64_t size) = 0;
  virtual Status put(const ConvertChunk& chunk) = 0;
  // A sink may go on writing from the bytes (data and packed) of its last
  // puts_in_flight() chunks after put() returns. The pipeline keeps those buffers, calls
  // settle(n) before it reuses an older one, and settle(0) before finish()
  // and before it frees them on an error.
  virtual size_t puts_in_flight() const { return 0; }
  // Waits until at most the n latest puts may still read their chunks; the first write error among the rest.
  virtual Status settle(size_t /*n*/) { return Status::Ok(); }
  // size: the final virtual size. Makes the target complete and durable.
  virtual Status finish(uint64_t size) = 0;
  // Bytes written to the target so far (data and metadata).
  virtual uint64_t bytes_written() const = 0;
  // Targets written in place (a device, an NBD export): makes everything put
  // so far durable and returns the virtual offset below which the target is
  // complete, the point a resumed run continues from.
  virtual Result<uint64_t> flush_reached() { return Status::Unsupported("this target cannot be resumed"); }
};

enum class TargetFormat { kRaw, kQcow2 };

// Called from the converting thread; done and total in bytes of the virtual
// disk (total is 0 while unknown, for a raw stream).
using ConvertProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// How file targets are written; the front end fills it from its settings.
struct TargetIo {
  // Null: default_sync_engine(). Buffered writes to a page cache gain nothing
  // from io_uring (they are memory copies) and measured slower when punted to
  // io-wq workers, so plain pwrite from the writer thread is the default.
  IoEngine* engine = nullptr;
  // Aligned data goes down with O_DIRECT where the file system takes it.
  bool direct = true;
  // The O_DIRECT writes. Null: default_io_engine(). Through io_uring the runs
  // of a chunk are on the device at once; one pwrite after another left it
  // idle between them (streamOptimized guest to raw: 0.34 s against 0.31 s).
  IoEngine* direct_engine = nullptr;
};

struct ConvertOptions {
  TargetFormat format = TargetFormat::kRaw;
  // qcow2 only: compress clusters (-c) with this codec.
  bool compress = false;
  Codec codec = Codec::kDeflate;
  int level = 0;  // 0: the codec's default
  uint64_t cluster_size = 64u << 10;
  // The target already reads as zeros (a fresh file always does; for an
  // existing block device the user says so): nothing needs writing for zeros.
  bool target_is_zero = false;
  // Replace an existing target file.
  bool overwrite = false;
  // Flush the target to stable storage before it gets its final name.
  bool sync = true;
  // Worker threads for reads, zero detection and compression; 0 = cores + 2.
  unsigned threads = 0;
  uint64_t inflight_bytes = kDefaultInflightBytes;
  // Set by a signal handler: the pipeline stops at the next chunk with ECANCELED.
  const std::atomic<bool>* cancel = nullptr;
  ConvertProgressFn progress;
  // A resumed run in place: the writing pass starts at this virtual offset (a
  // multiple of kConvertChunk); a planning pass still reads everything.
  uint64_t start_offset = 0;
  // Targets written in place (block devices, NBD exports; convert_job.h):
  // where the resume record goes (empty: none is kept), whether to continue
  // from it, how often to flush, and how many NBD connections to use.
  std::string state_file;
  bool resume = false;
  double checkpoint_seconds = 5.0;
  unsigned nbd_connections = 4;
  // How sources named by path are opened.
  OpenOptions open;
  TargetIo target_io;
  // Given the opened source device, returns the device to convert instead
  // (convert --fixup: a copy-on-write overlay with the KVM fixups applied, so
  // the source is never written). Empty: convert the source as it is. Runs
  // before the target is created; not available for a stream on stdin.
  std::function<Result<std::shared_ptr<BlockDevice>>(std::shared_ptr<BlockDevice>)> prepare_source;
  // Non-empty: convert this LVM2 logical volume ("VG/LV") of the source instead of the whole disk, its PVs looked
  // for on the source and on `lv_disks` (the guest's other disks, opened read-only with `open`).
  std::string lv;
  std::vector<std::string> lv_disks;
};

struct ConvertStats {
  uint64_t virtual_size = 0;
  uint64_t bytes_read = 0;       // source bytes read (data extents)
  uint64_t bytes_written = 0;    // bytes written to the target, metadata included
  uint64_t bytes_holes = 0;      // skipped: holes in the source
  uint64_t bytes_zeros = 0;      // skipped: zero extents and zero blocks found in data
  uint64_t allocated_bytes = 0;  // the target's allocated bytes (0 for a pipe)
  double seconds = 0;
  bool two_passes = false;  // the source was read twice (qcow2 to a pipe)
  std::vector<std::string> warnings;  // how the source was read (chain_warnings: a VHDX log replayed in memory)
};

// Converts src into sink. The source device is only read. Holes and zero
// extents are never read; zero 4 KiB blocks inside data are not written.
Result<ConvertStats> convert(BlockDevice& src, ConvertSink& sink, const ConvertOptions& opts);

// Converts a stream read front to back (standard input): the reading thread
// takes pieces off the stream, workers inflate them, the sink gets them in order.
Result<ConvertStats> convert_stream(StreamSource& src, ConvertSink& sink, const ConvertOptions& opts);

}  // namespace vdkit
