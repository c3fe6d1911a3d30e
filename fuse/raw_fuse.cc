// FUSE low-level operations for the raw view: a folder of `disk`, `p1`, `p2`, ... with SEEK_DATA/SEEK_HOLE from extents.
//
// Inode 1 is the folder; entry i (0 = disk) is inode i + 2. Nothing in the
// folder changes during a mount, so every answer may be cached by the kernel.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "blockcore/base/checked.h"
#include "fuse/fuse_guard.h"
#include "fuse/fuse_views.h"

namespace vdkit {
namespace {

RawFuseContext& ctx_of(fuse_req_t req) { return *static_cast<RawFuseContext*>(fuse_req_userdata(req)); }

const RawFuseEntry* entry_of(RawFuseContext& c, fuse_ino_t ino) {
  if (ino < 2 || ino - 2 >= c.entries.size()) return nullptr;
  return &c.entries[ino - 2];
}

struct stat stat_of(RawFuseContext& c, fuse_ino_t ino) {
  struct stat st{};
  st.st_ino = ino;
  st.st_uid = getuid();
  st.st_gid = getgid();
  st.st_atim = st.st_mtim = st.st_ctim = c.mounted_at;
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
    return st;
  }
  const RawFuseEntry* e = entry_of(c, ino);
  st.st_mode = S_IFREG | (c.writable ? 0644 : 0444);
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(e->device->size());
  st.st_blksize = 1 << 16;
  st.st_blocks = static_cast<blkcnt_t>(div_round_up(e->device->size(), 512));
  return st;
}

int err_of(const Status& st) {
  if (st.ok()) return 0;
  std::fprintf(stderr, "vdkit mount: %s\n", st.message().c_str());
  return st.code() == EINVAL ? EIO : st.code();
}

void op_init(void*, struct fuse_conn_info* conn) {
  conn->max_write = 1 << 20;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

void op_destroy(void* userdata) {
  guarded("destroy", [&] {
    auto* c = static_cast<RawFuseContext*>(userdata);
    if (!c->writable) return;
    for (auto& e : c->entries) {
      Status st = e.device->flush();
      if (!st.ok() && c->flush_status.ok()) c->flush_status = st;
    }
  });
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, "lookup", [&] {
    auto& c = ctx_of(req);
    if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
    for (size_t i = 0; i < c.entries.size(); ++i) {
      if (c.entries[i].name == name) {
        fuse_entry_param e{};
        e.ino = i + 2;
        e.attr = stat_of(c, e.ino);
        e.attr_timeout = e.entry_timeout = c.timeout;
        return (void)fuse_reply_entry(req, &e);
      }
    }
    fuse_reply_err(req, ENOENT);
  });
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  guarded(req, "getattr", [&] {
    auto& c = ctx_of(req);
    if (ino != FUSE_ROOT_ID && !entry_of(c, ino)) return (void)fuse_reply_err(req, ENOENT);
    struct stat st = stat_of(c, ino);
    fuse_reply_attr(req, &st, c.timeout);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat*, int to_set, struct fuse_file_info*) {
  guarded(req, "setattr", [&] {
    auto& c = ctx_of(req);
    // A disk's size is fixed; times, owners and modes are not stored anywhere.
    if (to_set & FUSE_SET_ATTR_SIZE) return (void)fuse_reply_err(req, c.writable ? EPERM : EROFS);
    if (ino != FUSE_ROOT_ID && !entry_of(c, ino)) return (void)fuse_reply_err(req, ENOENT);
    struct stat st = stat_of(c, ino);
    fuse_reply_attr(req, &st, c.timeout);
  });
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  auto& c = ctx_of(req);
  if (!entry_of(c, ino)) return (void)fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY && !c.writable) return (void)fuse_reply_err(req, EROFS);
  if (fi->flags & O_TRUNC) return (void)fuse_reply_err(req, c.writable ? EPERM : EROFS);
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "read", [&] {
    auto& c = ctx_of(req);
    const RawFuseEntry* e = entry_of(c, ino);
    if (!e || off < 0) return (void)fuse_reply_err(req, EINVAL);
    uint64_t dsize = e->device->size();
    if (static_cast<uint64_t>(off) >= dsize) return (void)fuse_reply_buf(req, nullptr, 0);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, dsize - off));
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
    Status st = e->device->read(static_cast<uint64_t>(off), std::span<uint8_t>(buf.get(), n));
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), n);
  });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "write", [&] {
    auto& c = ctx_of(req);
    const RawFuseEntry* e = entry_of(c, ino);
    if (!e || off < 0) return (void)fuse_reply_err(req, EINVAL);
    if (!c.writable) return (void)fuse_reply_err(req, EROFS);
    uint64_t dsize = e->device->size();
    if (static_cast<uint64_t>(off) >= dsize) return (void)fuse_reply_err(req, ENOSPC);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, dsize - off));
    Status st =
        e->device->write(static_cast<uint64_t>(off), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), n));
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    fuse_reply_write(req, n);
  });
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int, struct fuse_file_info*) {
  guarded(req, "fsync", [&] {
    auto& c = ctx_of(req);
    const RawFuseEntry* e = entry_of(c, ino);
    if (!e || !c.writable) return (void)fuse_reply_err(req, 0);
    fuse_reply_err(req, err_of(e->device->flush()));
  });
}

void op_flush(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }
void op_release(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }

// SEEK_DATA / SEEK_HOLE answered from the device's extents, scanned in bounded windows.
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info*) {
  guarded(req, "lseek", [&] {
    auto& c = ctx_of(req);
    const RawFuseEntry* e = entry_of(c, ino);
    if (!e) return (void)fuse_reply_err(req, EINVAL);
    if (whence != SEEK_DATA && whence != SEEK_HOLE) return (void)fuse_reply_err(req, EINVAL);
    uint64_t size = e->device->size();
    if (off < 0 || static_cast<uint64_t>(off) >= size) return (void)fuse_reply_err(req, ENXIO);
    constexpr uint64_t kWindow = 1ull << 30;
    for (uint64_t pos = static_cast<uint64_t>(off); pos < size;) {
      uint64_t len = std::min(kWindow, size - pos);
      std::vector<Extent> ex;
      Status st = e->device->extents(pos, len, ex);
      if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
      for (const Extent& x : ex) {
        bool data = x.type == ExtentType::kData;
        if ((whence == SEEK_DATA) == data) return (void)fuse_reply_lseek(req, static_cast<off_t>(std::max(x.offset, pos)));
      }
      pos += len;
    }
    // No more data: ENXIO. Past the last data there is the implicit hole at the end.
    if (whence == SEEK_DATA) return (void)fuse_reply_err(req, ENXIO);
    fuse_reply_lseek(req, static_cast<off_t>(size));
  });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  fi->keep_cache = 1;
  fi->cache_readdir = 1;
  fuse_reply_open(req, fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "readdir", [&] {
    auto& c = ctx_of(req);
    std::string buf(size, '\0');
    size_t used = 0;
    // Entry k: 0 ".", 1 "..", 2.. the files.
    for (size_t k = static_cast<size_t>(std::max<off_t>(off, 0)); k < c.entries.size() + 2; ++k) {
      struct stat st{};
      std::string name;
      if (k < 2) {
        name = k == 0 ? "." : "..";
        st.st_ino = FUSE_ROOT_ID;
        st.st_mode = S_IFDIR;
      } else {
        name = c.entries[k - 2].name;
        st.st_ino = k;
        st.st_mode = S_IFREG;
      }
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, static_cast<off_t>(k + 1));
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void op_releasedir(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.destroy = op_destroy;
  o.lookup = op_lookup;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.open = op_open;
  o.read = op_read;
  o.write = op_write;
  o.flush = op_flush;
  o.release = op_release;
  o.fsync = op_fsync;
  o.lseek = op_lseek;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.releasedir = op_releasedir;
  return o;
}();

}  // namespace

const fuse_lowlevel_ops& raw_fuse_ops() { return kOps; }

}  // namespace vdkit
