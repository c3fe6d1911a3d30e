// NBD sources through libnbd: a small pool of connections for reads, "base:allocation" block status for extents.
#include "blockcore/sources/nbd_source.h"

#include <libnbd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "blockcore/sources/nbd_handle.h"

namespace vdkit {

namespace {

// Requests are split at this size: the NBD protocol lets servers refuse larger ones.
constexpr uint64_t kNbdMaxRequest = 32u << 20;
// Block status is asked for at most this many bytes at once (the count is 32-bit).
constexpr uint64_t kNbdMaxStatus = 1ull << 31;

std::string nbd_err() { return nbd_error_text(); }
using HandlePtr = NbdHandlePtr;

Result<HandlePtr> connect(const std::string& uri) { return nbd_connect(uri, true); }

class NbdDevice final : public BlockDevice {
 public:
  NbdDevice(std::string uri, std::vector<HandlePtr> handles, uint64_t size, bool has_status)
      : uri_(std::move(uri)), handles_(std::move(handles)), size_(size), has_status_(has_status) {
    for (auto& h : handles_) free_.push_back(h.get());
    info_.filename = uri_;
    info_.format = "raw";
    info_.subformat = "nbd";
    info_.virtual_size = size_;
  }

  uint64_t size() const override { return size_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    Lease l(*this);
    for (uint64_t done = 0; done < buf.size();) {
      uint64_t n = std::min<uint64_t>(kNbdMaxRequest, buf.size() - done);
      if (nbd_pread(l.h, buf.data() + done, n, offset + done, 0) == -1) {
        int err = nbd_get_errno();
        return Status::Error(err ? err : EIO, "'" + uri_ + "': read of " + std::to_string(n) + " bytes at offset " +
                                                  std::to_string(offset + done) + ": " + nbd_err());
      }
      done += n;
    }
    return Status::Ok();
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    if (!has_status_) {
      append_extent(out, {offset, length, ExtentType::kData});
      return Status::Ok();
    }
    Lease l(*this);
    uint64_t pos = offset, end = offset + length;
    while (pos < end) {
      struct Ctx {
        uint64_t pos, end;
        std::vector<Extent>* out;
      } ctx{pos, end, &out};
      nbd_extent_callback cb;
      cb.callback = [](void* user, const char* meta, uint64_t, uint32_t* entries, size_t n, int*) -> int {
        auto* c = static_cast<Ctx*>(user);
        if (std::string(meta) != LIBNBD_CONTEXT_BASE_ALLOCATION) return 0;
        for (size_t i = 0; i + 1 < n && c->pos < c->end; i += 2) {
          uint64_t len = std::min<uint64_t>(entries[i], c->end - c->pos);
          if (len == 0) break;
          uint32_t f = entries[i + 1];
          ExtentType t = (f & LIBNBD_STATE_HOLE) && (f & LIBNBD_STATE_ZERO) ? ExtentType::kHole
                         : (f & LIBNBD_STATE_ZERO)                          ? ExtentType::kZero
                                                                            : ExtentType::kData;
          append_extent(*c->out, {c->pos, len, t});
          c->pos += len;
        }
        return 0;
      };
      cb.user_data = &ctx;
      cb.free = nullptr;
      uint64_t ask = std::min(kNbdMaxStatus, end - pos);
      if (nbd_block_status(l.h, ask, pos, cb, 0) == -1) {
        int err = nbd_get_errno();
        return Status::Error(err ? err : EIO,
                             "'" + uri_ + "': block status at offset " + std::to_string(pos) + ": " + nbd_err());
      }
      if (ctx.pos == pos)
        return Status::IoError("'" + uri_ + "': the server's block status made no progress at offset " +
                               std::to_string(pos));
      pos = ctx.pos;
    }
    return Status::Ok();
  }

  const ImageInfo& info() const override { return info_; }

 private:
  // Borrows a connection for one request.
  struct Lease {
    explicit Lease(NbdDevice& d) : dev(d) {
      std::unique_lock<std::mutex> lk(d.mu_);
      d.cv_.wait(lk, [&] { return !d.free_.empty(); });
      h = d.free_.back();
      d.free_.pop_back();
    }
    ~Lease() {
      {
        std::lock_guard<std::mutex> lk(dev.mu_);
        dev.free_.push_back(h);
      }
      dev.cv_.notify_one();
    }
    NbdDevice& dev;
    nbd_handle* h;
  };

  std::string uri_;
  std::vector<HandlePtr> handles_;
  uint64_t size_;
  bool has_status_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<nbd_handle*> free_;
  ImageInfo info_;
};

}  // namespace

void NbdHandleCloser::operator()(nbd_handle* h) const {
  if (h) {
    nbd_shutdown(h, 0);
    nbd_close(h);
  }
}

std::string nbd_error_text() {
  const char* e = nbd_get_error();
  return e ? e : "unknown libnbd error";
}

Result<NbdHandlePtr> nbd_connect(const std::string& uri, bool block_status) {
  NbdHandlePtr h(nbd_create());
  if (!h) return Status::IoError("libnbd: " + nbd_error_text());
  if (block_status && nbd_add_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    return Status::IoError("libnbd: " + nbd_error_text());
  if (nbd_connect_uri(h.get(), uri.c_str()) == -1) {
    int err = nbd_get_errno();
    return Status::Error(err ? err : EIO, "cannot connect to '" + uri + "': " + nbd_error_text());
  }
  return h;
}

Result<NbdHandlePtr> nbd_connect_more(const std::string& uri, bool block_status, int ms) {
  NbdHandlePtr h(nbd_create());
  if (!h) return Status::IoError("libnbd: " + nbd_error_text());
  if (block_status && nbd_add_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    return Status::IoError("libnbd: " + nbd_error_text());
  if (nbd_aio_connect_uri(h.get(), uri.c_str()) == -1)
    return Status::IoError("cannot connect to '" + uri + "': " + nbd_error_text());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (nbd_aio_is_connecting(h.get()) == 1) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "'" + uri + "': no answer to another connection");
    if (nbd_poll(h.get(), static_cast<int>(left.count())) == -1)
      return Status::IoError("cannot connect to '" + uri + "': " + nbd_error_text());
  }
  if (nbd_aio_is_ready(h.get()) != 1) return Status::IoError("cannot connect to '" + uri + "': " + nbd_error_text());
  return h;
}

bool is_nbd_uri(const std::string& s) {
  for (const char* p : {"nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://"})
    if (s.rfind(p, 0) == 0) return true;
  return false;
}

Result<BlockDevicePtr> open_nbd_source(const std::string& uri, unsigned connections) {
  VDKIT_ASSIGN_OR_RETURN(HandlePtr first, connect(uri));
  int64_t size = nbd_get_size(first.get());
  if (size < 0) return Status::IoError("'" + uri + "': cannot get the export size: " + nbd_err());
  bool status = nbd_can_meta_context(first.get(), LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  bool multi = nbd_can_multi_conn(first.get()) == 1;
  std::vector<HandlePtr> handles;
  handles.push_back(std::move(first));
  // Extra connections only where the server promises they see one another's data.
  for (unsigned i = 1; multi && i < connections; ++i) {
    auto h = nbd_connect_more(uri, true, kMoreConnectionMs);
    if (!h.ok()) break;  // the server may cap connections: one is enough
    handles.push_back(std::move(h).value());
  }
  return BlockDevicePtr(std::make_unique<NbdDevice>(uri, std::move(handles), static_cast<uint64_t>(size), status));
}

}  // namespace vdkit
