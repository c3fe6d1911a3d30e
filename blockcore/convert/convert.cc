// The convert pipeline: bounded read-ahead on worker threads, zero detection and compression there, writes in order.
#include "blockcore/convert/convert.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "blockcore/base/checked.h"
#include "blockcore/sources/stream_source.h"
#include "blockcore/base/thread_pool.h"

namespace vdkit {

void advise_huge_pages(void* p, size_t n) {
  // Only whole huge pages inside the buffer; a refusal (no THP in this kernel) leaves ordinary pages.
  const auto begin = (reinterpret_cast<uintptr_t>(p) + kHugeChunkBytes - 1) & ~(uintptr_t{kHugeChunkBytes} - 1);
  const auto end = (reinterpret_cast<uintptr_t>(p) + n) & ~(uintptr_t{kHugeChunkBytes} - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

namespace {

// Marks used units and compresses them; runs on a worker after the chunk's bytes are in.
void finish_chunk(ConvertChunk& c, uint64_t gran, bool compress_units, Codec codec, int level, uint64_t& kept) {
  uint64_t units = c.data.size() / gran;
  c.used.assign(units, 0);
  kept = 0;
  // Units smaller than a zero block (512-byte qcow2 clusters) are checked one by one.
  const uint64_t block = std::min(kZeroBlock, gran);
  for (uint64_t b = 0; b * block < c.length; ++b) {
    uint64_t off = b * block;
    uint64_t n = std::min<uint64_t>(block, c.data.size() - off);
    if (!is_all_zero(c.data.data() + off, n)) {
      c.used[off / gran] = 1;
      kept += std::min<uint64_t>(n, c.length - off);
    }
  }
  if (!compress_units) return;
  c.packed.assign(units, {});
  for (uint64_t u = 0; u < units; ++u) {
    if (!c.used[u]) continue;
    c.packed[u] = compress(codec, std::span<const uint8_t>(c.data.data() + u * gran, gran), gran, level);
  }
}

// Runs fill jobs on workers and hands finished chunks to the sink in submission order.
class OrderedPipeline {
 public:
  OrderedPipeline(ConvertSink& sink, const ConvertOptions& opts, bool planning, uint64_t chunk_bytes, uint64_t total)
      : sink_(sink),
        opts_(opts),
        planning_(planning),
        total_(total),
        pool_(opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency()) + 2) {
    max_slots_ = std::max<uint64_t>(opts.inflight_bytes / std::max<uint64_t>(chunk_bytes, 1), pool_.size() * 2);
    // Workers start with the stop signals blocked, so SIGINT/SIGTERM reach the
    // converting thread and interrupt a read it is blocked in (stdin, a pipe).
    sigset_t stop, old;
    sigemptyset(&stop);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&stop, sig);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    pool_.post([] {});
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~OrderedPipeline() {
    abort_.store(true);
    (void)drain();
  }

  // fill puts the chunk's bytes in (data already sized, and zeroed unless fill_writes_all: a fill that writes every
  // byte itself saves zeroing what it overwrites, a pass over every byte of the disk's data).
  Status submit(uint64_t offset, uint64_t length, uint64_t padded, std::function<Status(ConvertChunk&)> fill,
                bool fill_writes_all = false) {
    if (!error_.ok()) return error_;
    if (opts_.cancel && opts_.cancel->load()) return error_ = Status::Error(ECANCELED, "interrupted");
    while (slots_.size() >= max_slots_) {
      VDKIT_RETURN_IF_ERROR(consume_front());
    }
    auto slot = std::make_shared<Slot>();
    slot->chunk.offset = offset;
    slot->chunk.length = length;
    slots_.push_back(slot);
    uint64_t gran = sink_.granularity();
    bool comp = sink_.wants_compression();
    Codec codec = sink_.codec();
    int level = opts_.level;
    pool_.post([this, slot, padded, gran, comp, codec, level, fill_writes_all, fill = std::move(fill)] {
      Status st;
      try {
        // After an error or a cancel, queued jobs end at once instead of reading.
        if (abort_.load() || (opts_.cancel && opts_.cancel->load())) {
          st = Status::Error(ECANCELED, "interrupted");
        } else {
          slot->chunk.data = take_buffer();
          if (fill_writes_all)
            slot->chunk.data.resize(padded);
          else
            slot->chunk.data.assign(padded, 0);
          st = fill(slot->chunk);
          if (st.ok()) finish_chunk(slot->chunk, gran, comp, codec, level, slot->kept);
        }
      } catch (const std::bad_alloc&) {
        st = Status::Error(ENOMEM, "out of memory filling a chunk");
      }
      std::lock_guard<std::mutex> lk(slot->mu);
      slot->st = st;
      slot->done = true;
      slot->cv.notify_all();
    });
    return Status::Ok();
  }

  // Waits for every queued chunk and hands it on; returns the first error.
  Status drain() {
    while (!slots_.empty()) {
      Status st = consume_front();
      if (!st.ok()) {
        abort_.store(true);
        // Jobs still running reference the source: wait for all before returning.
        for (auto& s : slots_) wait(*s);
        slots_.clear();
        (void)settle_all();
        return st;
      }
    }
    Status st = settle_all();
    if (error_.ok() && !st.ok()) error_ = st;
    return error_;
  }

  uint64_t kept() const { return kept_; }

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Status st;
    ConvertChunk chunk;
    uint64_t kept = 0;
  };

  static void wait(Slot& s) {
    std::unique_lock<std::mutex> lk(s.mu);
    s.cv.wait(lk, [&] { return s.done; });
  }

  Status consume_front() {
    auto slot = slots_.front();
    wait(*slot);
    slots_.pop_front();
    if (!error_.ok()) return error_;
    if (!slot->st.ok()) return error_ = slot->st;
    if (opts_.cancel && opts_.cancel->load()) return error_ = Status::Error(ECANCELED, "interrupted");
    Status st = planning_ ? sink_.plan(slot->chunk) : sink_.put(slot->chunk);
    // Held even when put() failed: writes it started may still read the buffers.
    Status retired = retire(std::move(slot->chunk));
    if (!st.ok()) return error_ = st;
    if (!retired.ok()) return error_ = retired;
    kept_ += slot->kept;
    if (opts_.progress && !planning_) opts_.progress(slot->chunk.offset + slot->chunk.length, total_);
    return Status::Ok();
  }

  // Reuses the buffer of a chunk handed to the sink, or holds the chunk's
  // bytes (and compressed units) while the sink's writes may still read them
  // (ConvertSink::puts_in_flight).
  Status retire(ConvertChunk&& c) {
    const size_t n = planning_ ? 0 : sink_.puts_in_flight();
    held_.push_back(Held{std::move(c.data), std::move(c.packed)});
    if (held_.size() <= n) return Status::Ok();
    Status st = n ? sink_.settle(n) : Status::Ok();
    for (; held_.size() > n; held_.pop_front()) give_buffer(std::move(held_.front().data));
    return st;
  }

  // Waits for every write the sink has in flight, so no held buffer is read any more.
  Status settle_all() {
    if (held_.empty()) return Status::Ok();
    Status st = sink_.settle(0);
    for (; !held_.empty(); held_.pop_front()) give_buffer(std::move(held_.front().data));
    return st;
  }

  // Chunk buffers are reused: a fresh 1 MiB allocation costs page faults and
  // kernel zeroing on every chunk. At most max_slots_ buffers exist.
  ChunkBuffer take_buffer() {
    std::lock_guard<std::mutex> lk(buf_mu_);
    if (free_bufs_.empty()) return {};
    auto b = std::move(free_bufs_.back());
    free_bufs_.pop_back();
    return b;
  }
  void give_buffer(ChunkBuffer b) {
    std::lock_guard<std::mutex> lk(buf_mu_);
    if (free_bufs_.size() < max_slots_) free_bufs_.push_back(std::move(b));
  }

  ConvertSink& sink_;
  const ConvertOptions& opts_;
  bool planning_;
  uint64_t total_;
  ThreadPool pool_;
  uint64_t max_slots_;
  std::deque<std::shared_ptr<Slot>> slots_;
  Status error_;
  uint64_t kept_ = 0;
  std::atomic<bool> abort_{false};
  std::mutex buf_mu_;
  std::vector<ChunkBuffer> free_bufs_;
  struct Held {
    ChunkBuffer data;
    std::vector<std::vector<uint8_t>> packed;
  };
  std::deque<Held> held_;  // chunks the sink's writes may still read, oldest first
};

uint64_t chunk_bytes_for(const ConvertSink& sink) { return std::max<uint64_t>(kConvertChunk, sink.granularity()); }

// One pass over a device: walks extents in windows, queues a job per chunk holding data.
Status device_pass(BlockDevice& src, ConvertSink& sink, const ConvertOptions& opts, bool planning,
                   ConvertStats& stats) {
  const uint64_t size = src.size();
  const uint64_t gran = sink.granularity();
  const uint64_t chunk = chunk_bytes_for(sink);
  OrderedPipeline pipe(sink, opts, planning, chunk, size);
  uint64_t holes = 0, zeros = 0, read = 0;
  uint64_t cur = UINT64_MAX;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // absolute [offset, length) to read in chunk `cur`
  auto flush = [&]() -> Status {
    if (cur == UINT64_MAX) return Status::Ok();
    uint64_t len = std::min(chunk, size - cur);
    uint64_t padded = div_round_up(len, gran) * gran;
    uint64_t base = cur;
    auto rs = std::move(ranges);
    ranges.clear();
    cur = UINT64_MAX;
    // The ranges are in ascending order and apart: the fill zeroes only the gaps between them (holes, zero extents
    // and the padding past the disk's end), not the bytes the reads overwrite.
    return pipe.submit(
        base, len, padded,
        [&src, base, rs = std::move(rs)](ConvertChunk& c) -> Status {
          uint64_t at = 0;
          for (auto [off, n] : rs) {
            const uint64_t rel = off - base;
            if (rel > at) std::memset(c.data.data() + at, 0, rel - at);
            VDKIT_RETURN_IF_ERROR(src.read(off, std::span<uint8_t>(c.data.data() + rel, n)));
            at = rel + n;
          }
          if (at < c.data.size()) std::memset(c.data.data() + at, 0, c.data.size() - at);
          return Status::Ok();
        },
        true);
  };
  // Windows are multiples of the chunk so no chunk straddles two.
  const uint64_t window = std::max<uint64_t>(kExtentWindow / chunk, 1) * chunk;
  // A resumed run writes from `start` (a chunk boundary); a plan sees everything.
  const uint64_t start = planning ? 0 : std::min(opts.start_offset, size);
  for (uint64_t win = align_down(start, window); win < size; win += window) {
    uint64_t wlen = std::min(window, size - win);
    std::vector<Extent> ex;
    VDKIT_RETURN_IF_ERROR(src.extents(win, wlen, ex));
    uint64_t expect = win;
    for (Extent e : ex) {
      if (e.offset != expect || e.length == 0 || !range_within(e.offset, e.length, win + wlen))
        return Status::IoError("the source reported extents that do not tile [" + std::to_string(win) + ", " +
                               std::to_string(win + wlen) + ") at offset " + std::to_string(expect));
      expect += e.length;
      if (e.offset + e.length <= start) continue;
      if (e.offset < start) {
        e.length -= start - e.offset;
        e.offset = start;
      }
      if (e.type == ExtentType::kHole) {
        holes += e.length;
        continue;
      }
      if (e.type == ExtentType::kZero) {
        zeros += e.length;
        continue;
      }
      read += e.length;
      for (uint64_t pos = e.offset; pos < e.offset + e.length;) {
        uint64_t c = align_down(pos, chunk);
        if (c != cur) {
          VDKIT_RETURN_IF_ERROR(flush());
          cur = c;
        }
        uint64_t n = std::min(e.offset + e.length, c + chunk) - pos;
        ranges.emplace_back(pos, n);
        pos += n;
      }
    }
    if (expect != win + wlen)
      return Status::IoError("the source's extents end at " + std::to_string(expect) + ", not at " +
                             std::to_string(win + wlen));
  }
  VDKIT_RETURN_IF_ERROR(flush());
  VDKIT_RETURN_IF_ERROR(pipe.drain());
  if (!planning) {
    stats.bytes_holes = holes;
    stats.bytes_read += read;
    stats.bytes_zeros = size - start - holes - pipe.kept();
    if (opts.progress) opts.progress(size, size);
  } else {
    stats.bytes_read += read;
  }
  (void)zeros;
  return Status::Ok();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<ConvertStats> convert(BlockDevice& src, ConvertSink& sink, const ConvertOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ConvertStats stats;
  stats.virtual_size = src.size();
  if (sink.needs_plan()) {
    stats.two_passes = true;
    VDKIT_RETURN_IF_ERROR(device_pass(src, sink, opts, true, stats));
    VDKIT_RETURN_IF_ERROR(sink.end_plan(src.size()));
  }
  VDKIT_RETURN_IF_ERROR(sink.begin(src.size()));
  VDKIT_RETURN_IF_ERROR(device_pass(src, sink, opts, false, stats));
  VDKIT_RETURN_IF_ERROR(sink.finish(src.size()));
  stats.bytes_written = sink.bytes_written();
  stats.seconds = seconds_since(t0);
  return stats;
}

// Converts a stream read front to back: the reading thread takes pieces off
// the stream, workers inflate them, the sink gets them in order.
Result<ConvertStats> convert_stream(StreamSource& src, ConvertSink& sink, const ConvertOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  ConvertStats stats;
  if (sink.needs_plan())
    return Status::Invalid(
        "a qcow2 target on standard output must be laid out before its data, which needs two passes over the "
        "source, and a source on standard input can be read only once; write the qcow2 to a file, or use -O raw");
  const uint64_t gran = sink.granularity();
  const uint64_t chunk = chunk_bytes_for(sink);
  uint64_t size = src.size();
  VDKIT_RETURN_IF_ERROR(sink.begin(size));
  {
    OrderedPipeline pipe(sink, opts, false, chunk, size);
    for (;;) {
      auto piece = std::make_shared<StreamPiece>();
      Result<bool> more = src.next(chunk, *piece);
      if (!more.ok()) {
        (void)pipe.drain();
        return more.status();
      }
      if (!*more) break;
      uint64_t padded = div_round_up(piece->length, gran) * gran;
      VDKIT_RETURN_IF_ERROR(pipe.submit(piece->offset, piece->length, padded, [piece](ConvertChunk& c) -> Status {
        return fill_from_piece(*piece, std::span<uint8_t>(c.data.data(), c.data.size()));
      }));
    }
    VDKIT_RETURN_IF_ERROR(pipe.drain());
    size = src.size();
    stats.bytes_zeros = 0;
    stats.virtual_size = size;
    stats.bytes_read = src.stream_bytes();
    stats.bytes_holes = size - std::min(size, pipe.kept());
  }
  if (opts.progress) opts.progress(size, size);
  VDKIT_RETURN_IF_ERROR(sink.finish(size));
  stats.bytes_written = sink.bytes_written();
  stats.seconds = seconds_since(t0);
  return stats;
}

}  // namespace vdkit
