// FUSE low-level operations over an Ext2Volume: the guest's tree with its owners, modes, links, device nodes and xattrs.
//
// Inode numbers are the guest's own (FUSE's root 1 stands for ext2's root 2),
// stable for the life of the mount, so lookups need no table and forget() has
// nothing to free; the generation number tells reused inodes apart.
// Lock order: the volume mutex is the only lock; every reply is sent after it
// is released, exactly once per request.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <cstring>
#include <new>

#include "fuse/dir_reply.h"
#include "fuse/fuse_guard.h"
#include "fuse/fuse_views.h"

namespace vdkit {
namespace {

Ext2FuseContext& ctx_of(fuse_req_t req) { return *static_cast<Ext2FuseContext*>(fuse_req_userdata(req)); }

ext2_ino_t to_ext2(fuse_ino_t ino) { return ino == FUSE_ROOT_ID ? EXT2_ROOT_INO : static_cast<ext2_ino_t>(ino); }
fuse_ino_t to_fuse(ext2_ino_t ino) { return ino == EXT2_ROOT_INO ? FUSE_ROOT_ID : ino; }

int err_of(const Status& st) {
  if (st.ok()) return 0;
  if (st.code() == EIO) std::fprintf(stderr, "vdkit mount: %s\n", st.message().c_str());
  return st.code();
}

struct stat to_stat(const Ext2Stat& s) {
  struct stat st{};
  st.st_ino = to_fuse(s.ino);
  st.st_mode = s.mode;
  st.st_nlink = s.nlink;
  st.st_uid = s.uid;
  st.st_gid = s.gid;
  st.st_size = static_cast<off_t>(s.size);
  st.st_blocks = static_cast<blkcnt_t>(s.blocks512);
  st.st_blksize = 4096;
  st.st_rdev = s.rdev;
  st.st_atim = s.atime;
  st.st_mtim = s.mtime;
  st.st_ctim = s.ctime;
  return st;
}

void reply_entry_of(fuse_req_t req, const Ext2Stat& s, double timeout) {
  fuse_entry_param e{};
  e.ino = to_fuse(s.ino);
  e.generation = s.generation;
  e.attr = to_stat(s);
  e.attr_timeout = timeout;
  e.entry_timeout = timeout;
  fuse_reply_entry(req, &e);
}

// ---------------------------------------------------------------- lifecycle

void op_init(void* userdata, struct fuse_conn_info* conn) {
  auto* c = static_cast<Ext2FuseContext*>(userdata);
  // Big requests: reads and writes of up to 1 MiB reach us in one piece.
  conn->max_write = 1 << 20;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  if (c->writable && (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // No posix or flock locks: the kernel handles them locally for one mount.
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

void op_destroy(void* userdata) {
  guarded("destroy", [&] {
    auto* c = static_cast<Ext2FuseContext*>(userdata);
    c->close_status = c->volume->Close();
    if (!c->close_status.ok())
      std::fprintf(stderr, "vdkit mount: closing the file system: %s\n", c->close_status.message().c_str());
  });
}

// ---------------------------------------------------------------- names

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, "lookup", [&] {
    auto& c = ctx_of(req);
    Result<Ext2Stat> st = Status::Error(ENOENT, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      auto ino = c.volume->LookupLocked(to_ext2(parent), name);
      st = ino.ok() ? c.volume->StatLocked(*ino) : Result<Ext2Stat>(ino.status());
    }
    if (!st.ok()) {
      if (st.status().code() == ENOENT) {
        // A negative entry the kernel may cache (only we change this tree).
        fuse_entry_param e{};
        e.entry_timeout = c.timeout;
        fuse_reply_entry(req, &e);
        return;
      }
      fuse_reply_err(req, err_of(st.status()));
      return;
    }
    reply_entry_of(req, *st, c.timeout);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void op_forget_multi(fuse_req_t req, size_t, struct fuse_forget_data*) { fuse_reply_none(req); }

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  guarded(req, "getattr", [&] {
    auto& c = ctx_of(req);
    Result<Ext2Stat> st = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      st = c.volume->StatLocked(to_ext2(ino));
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st.status()));
    struct stat s = to_stat(*st);
    fuse_reply_attr(req, &s, c.timeout);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, struct fuse_file_info*) {
  guarded(req, "setattr", [&] {
    auto& c = ctx_of(req);
    if (!c.writable) return (void)fuse_reply_err(req, EROFS);
    Result<Ext2Stat> st = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      ext2_ino_t e = to_ext2(ino);
      Status s;
      if (to_set & FUSE_SET_ATTR_SIZE) s = c.volume->TruncateLocked(e, static_cast<uint64_t>(attr->st_size));
      std::optional<uint32_t> mode, uid, gid;
      std::optional<struct timespec> atime, mtime;
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      if (to_set & FUSE_SET_ATTR_MODE) mode = attr->st_mode;
      if (to_set & FUSE_SET_ATTR_UID) uid = attr->st_uid;
      if (to_set & FUSE_SET_ATTR_GID) gid = attr->st_gid;
      if (to_set & FUSE_SET_ATTR_ATIME) atime = attr->st_atim;
      if (to_set & FUSE_SET_ATTR_ATIME_NOW) atime = now;
      if (to_set & FUSE_SET_ATTR_MTIME) mtime = attr->st_mtim;
      if (to_set & FUSE_SET_ATTR_MTIME_NOW) mtime = now;
      if (s.ok() && (mode || uid || gid || atime || mtime)) s = c.volume->SetAttrLocked(e, mode, uid, gid, atime, mtime);
      st = s.ok() ? c.volume->StatLocked(e) : Result<Ext2Stat>(s);
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st.status()));
    struct stat s = to_stat(*st);
    fuse_reply_attr(req, &s, c.timeout);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guarded(req, "readlink", [&] {
    auto& c = ctx_of(req);
    Result<std::string> target = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      target = c.volume->ReadLinkLocked(to_ext2(ino));
    }
    if (!target.ok()) return (void)fuse_reply_err(req, err_of(target.status()));
    fuse_reply_readlink(req, target->c_str());
  });
}

// Creates something and replies with its entry (and an open handle for create()).
template <typename Make>
void create_common(fuse_req_t req, const char* op, Make&& make, struct fuse_file_info* fi = nullptr) {
  guarded(req, op, [&] {
    auto& c = ctx_of(req);
    if (!c.writable) return (void)fuse_reply_err(req, EROFS);
    const fuse_ctx* who = fuse_req_ctx(req);
    Result<Ext2Stat> st = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      Result<ext2_ino_t> ino = make(*c.volume, who->uid, who->gid);
      st = ino.ok() ? c.volume->StatLocked(*ino) : Result<Ext2Stat>(ino.status());
      if (st.ok() && fi) c.volume->AcquireLocked(st->ino);
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st.status()));
    if (fi) {
      fuse_entry_param e{};
      e.ino = to_fuse(st->ino);
      e.generation = st->generation;
      e.attr = to_stat(*st);
      e.attr_timeout = e.entry_timeout = c.timeout;
      fi->keep_cache = 1;
      if (fuse_reply_create(req, &e, fi) != 0) {
        std::lock_guard<std::mutex> g(c.volume->mutex());
        (void)c.volume->ReleaseLocked(st->ino);
      }
      return;
    }
    reply_entry_of(req, *st, c.timeout);
  });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  create_common(req, "mknod", [&](Ext2Volume& v, uid_t uid, gid_t gid) {
    return v.CreateLocked(to_ext2(parent), name, mode, uid, gid, rdev);
  });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  create_common(req, "mkdir", [&](Ext2Volume& v, uid_t uid, gid_t gid) {
    return v.CreateLocked(to_ext2(parent), name, S_IFDIR | (mode & 07777), uid, gid);
  });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  create_common(req, "symlink", [&](Ext2Volume& v, uid_t uid, gid_t gid) {
    return v.SymlinkLocked(to_ext2(parent), name, link, uid, gid);
  });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, struct fuse_file_info* fi) {
  create_common(
      req, "create",
      [&](Ext2Volume& v, uid_t uid, gid_t gid) {
        return v.CreateLocked(to_ext2(parent), name, S_IFREG | (mode & 07777), uid, gid);
      },
      fi);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  create_common(req, "link", [&](Ext2Volume& v, uid_t, gid_t) -> Result<ext2_ino_t> {
    VDKIT_RETURN_IF_ERROR(v.LinkLocked(to_ext2(ino), to_ext2(newparent), newname));
    return to_ext2(ino);
  });
}

template <typename Fn>
void simple_op(fuse_req_t req, const char* op, Fn&& fn) {
  guarded(req, op, [&] {
    auto& c = ctx_of(req);
    if (!c.writable) return (void)fuse_reply_err(req, EROFS);
    Status st;
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      st = fn(*c.volume);
    }
    fuse_reply_err(req, err_of(st));
  });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  simple_op(req, "unlink", [&](Ext2Volume& v) { return v.UnlinkLocked(to_ext2(parent), name); });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  simple_op(req, "rmdir", [&](Ext2Volume& v) { return v.RmdirLocked(to_ext2(parent), name); });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  if (flags & ~RENAME_NOREPLACE) return (void)fuse_reply_err(req, EINVAL);  // RENAME_EXCHANGE, WHITEOUT
  simple_op(req, "rename", [&](Ext2Volume& v) {
    return v.RenameLocked(to_ext2(parent), name, to_ext2(newparent), newname, (flags & RENAME_NOREPLACE) != 0);
  });
}

// ---------------------------------------------------------------- files

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "open", [&] {
    auto& c = ctx_of(req);
    bool wants_write = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    if (wants_write && !c.writable) return (void)fuse_reply_err(req, EROFS);
    Status st;
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      auto s = c.volume->StatLocked(to_ext2(ino));
      if (!s.ok()) st = s.status();
      else if (S_ISDIR(s->mode)) st = Status::Error(EISDIR, "");
      if (st.ok() && (fi->flags & O_TRUNC) && s->size) st = c.volume->TruncateLocked(to_ext2(ino), 0);
      if (st.ok()) c.volume->AcquireLocked(to_ext2(ino));
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    // Nothing but this mount changes the guest, so the kernel's page cache stays valid.
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0) {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      (void)c.volume->ReleaseLocked(to_ext2(ino));
    }
  });
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  guarded(req, "release", [&] {
    auto& c = ctx_of(req);
    Status st;
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      st = c.volume->ReleaseLocked(to_ext2(ino));
    }
    fuse_reply_err(req, err_of(st));
  });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "read", [&] {
    auto& c = ctx_of(req);
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[size]);
    Result<size_t> n = Status::Error(EIO, "");
    {
      std::unique_lock<std::mutex> lock(c.volume->mutex());
      n = c.volume->ReadLocked(lock, to_ext2(ino), static_cast<uint64_t>(off), std::span<uint8_t>(buf.get(), size));
    }
    if (!n.ok()) return (void)fuse_reply_err(req, err_of(n.status()));
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), *n);
  });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "write", [&] {
    auto& c = ctx_of(req);
    if (!c.writable) return (void)fuse_reply_err(req, EROFS);
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    Result<size_t> n = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      n = c.volume->WriteLocked(to_ext2(ino), static_cast<uint64_t>(off),
                                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), size));
    }
    if (!n.ok()) return (void)fuse_reply_err(req, err_of(n.status()));
    fuse_reply_write(req, *n);
  });
}

void op_flush(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }

void op_fsync(fuse_req_t req, fuse_ino_t, int, struct fuse_file_info*) {
  guarded(req, "fsync", [&] {
    auto& c = ctx_of(req);
    Status st;
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      st = c.volume->FlushLocked();
    }
    fuse_reply_err(req, err_of(st));
  });
}

// ---------------------------------------------------------------- folders

struct DirHandle {
  std::vector<Ext2DirEntry> entries;  // "." and ".." first
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "opendir", [&] {
    auto& c = ctx_of(req);
    auto h = std::make_unique<DirHandle>();
    Status st;
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      auto list = c.volume->ReadDirLocked(to_ext2(ino));
      if (!list.ok()) {
        st = list.status();
      } else {
        auto parent = c.volume->LookupLocked(to_ext2(ino), "..");
        h->entries.push_back({".", to_ext2(ino), DT_DIR});
        h->entries.push_back({"..", parent.ok() ? *parent : to_ext2(ino), DT_DIR});
        for (auto& e : *list) h->entries.push_back(std::move(e));
      }
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fi->keep_cache = 1;
    fi->cache_readdir = 1;
    if (fuse_reply_open(req, fi) == 0) h.release();
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  guarded(req, "readdir", [&] {
    auto* h = reinterpret_cast<DirHandle*>(fi->fh);
    reply_dir_entries(req, size, off, h->entries.size(), [&](size_t i, char* out, size_t room) {
      const auto& e = h->entries[i];
      struct stat st{};
      st.st_ino = to_fuse(e.ino);
      st.st_mode = e.type << 12;  // DT_* to S_IF*
      return fuse_add_direntry(req, out, room, e.name.c_str(), &st, static_cast<off_t>(i + 1));
    });
  });
}

// readdir with attributes, so `find`, `ls -l` and `du` need no lookup per entry.
void op_readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  guarded(req, "readdirplus", [&] {
    auto& c = ctx_of(req);
    auto* h = reinterpret_cast<DirHandle*>(fi->fh);
    std::lock_guard<std::mutex> g(c.volume->mutex());
    reply_dir_entries(req, size, off, h->entries.size(), [&](size_t i, char* out, size_t room) {
      const auto& d = h->entries[i];
      fuse_entry_param e{};
      Result<Ext2Stat> st = Status::Error(ENOENT, "");
      if (i >= 2) st = c.volume->StatLocked(d.ino);
      if (st.ok()) {
        e.ino = to_fuse(st->ino);
        e.generation = st->generation;
        e.attr = to_stat(*st);
        e.attr_timeout = e.entry_timeout = c.timeout;
      } else {
        // "." and "..", or an unreadable inode: a name only; the kernel looks it up if asked.
        e.attr.st_ino = to_fuse(d.ino);
        e.attr.st_mode = d.type << 12;
      }
      return fuse_add_direntry_plus(req, out, room, d.name.c_str(), &e, static_cast<off_t>(i + 1));
    });
  });
}

void op_releasedir(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  guarded(req, "statfs", [&] {
    auto& c = ctx_of(req);
    struct statvfs sv{};
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      ext2_filsys fs = c.volume->fs();
      uint64_t free = ext2fs_free_blocks_count(fs->super), reserved = ext2fs_r_blocks_count(fs->super);
      sv.f_bsize = sv.f_frsize = fs->blocksize;
      sv.f_blocks = ext2fs_blocks_count(fs->super);
      sv.f_bfree = free;
      sv.f_bavail = free > reserved ? free - reserved : 0;
      sv.f_files = fs->super->s_inodes_count;
      sv.f_ffree = sv.f_favail = fs->super->s_free_inodes_count;
      sv.f_namemax = EXT2_NAME_LEN;
    }
    fuse_reply_statfs(req, &sv);
  });
}

// ---------------------------------------------------------------- xattrs

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  simple_op(req, "setxattr", [&](Ext2Volume& v) {
    return v.SetXattrLocked(to_ext2(ino), name, std::string_view(value, size), flags);
  });
}

void reply_sized(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) fuse_reply_xattr(req, data.size());
  else if (size < data.size()) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, data.data(), data.size());
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  guarded(req, "getxattr", [&] {
    auto& c = ctx_of(req);
    Result<std::string> v = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      v = c.volume->GetXattrLocked(to_ext2(ino), name);
    }
    if (!v.ok()) return (void)fuse_reply_err(req, err_of(v.status()));
    reply_sized(req, *v, size);
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  guarded(req, "listxattr", [&] {
    auto& c = ctx_of(req);
    Result<std::vector<std::string>> names = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.volume->mutex());
      names = c.volume->ListXattrsLocked(to_ext2(ino));
    }
    if (!names.ok()) {
      // A file system without the ext_attr feature simply has none.
      if (names.status().code() == ENOTSUP) return reply_sized(req, "", size);
      return (void)fuse_reply_err(req, err_of(names.status()));
    }
    std::string all;
    for (const auto& n : *names) {
      all += n;
      all += '\0';
    }
    reply_sized(req, all, size);
  });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  simple_op(req, "removexattr", [&](Ext2Volume& v) { return v.RemoveXattrLocked(to_ext2(ino), name); });
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.destroy = op_destroy;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.symlink = op_symlink;
  o.rename = op_rename;
  o.link = op_link;
  o.open = op_open;
  o.read = op_read;
  o.write = op_write;
  o.flush = op_flush;
  o.release = op_release;
  o.fsync = op_fsync;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.releasedir = op_releasedir;
  o.fsyncdir = op_fsync;
  o.statfs = op_statfs;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
  o.create = op_create;
  return o;
}();

}  // namespace

const fuse_lowlevel_ops& ext2_fuse_ops() { return kOps; }

}  // namespace vdkit
