// FUSE low-level operations over a guestfs::FileTree: the guest's tree read-only, with owners, modes, links, device
// nodes and xattrs as the reader finds them.
#include "fuse/tree_fuse.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuse/dir_reply.h"
#include "fuse/fuse_guard.h"

namespace vdkit {
namespace {

using guestfs::TreeEntry;
using guestfs::TreeStat;

// The largest read we serve in one request (the kernel asks for at most max_read, 128 KiB to 1 MiB).
constexpr size_t kMaxReadBytes = size_t{4} << 20;

TreeFuseContext& ctx_of(fuse_req_t req) { return *static_cast<TreeFuseContext*>(fuse_req_userdata(req)); }

// FUSE's root is 1; the tree's root and a tree inode 1 swap places (see tree_fuse.h).
uint64_t to_tree(const TreeFuseContext& c, fuse_ino_t ino) {
  uint64_t root = c.tree->root_ino();
  if (ino == FUSE_ROOT_ID) return root;
  if (ino == root) return FUSE_ROOT_ID;
  return ino;
}
fuse_ino_t to_fuse(const TreeFuseContext& c, uint64_t ino) {
  uint64_t root = c.tree->root_ino();
  if (ino == root) return FUSE_ROOT_ID;
  if (ino == FUSE_ROOT_ID) return root;
  return ino;
}

// Status::Corrupt is EINVAL, which a program would read as its own mistake; the kernel gets EIO for it instead.
int err_of(const Status& st) {
  if (st.ok()) return 0;
  int code = st.code();
  if (code == EIO || code == EUCLEAN || code == EINVAL) std::fprintf(stderr, "vdkit mount: %s\n", st.message().c_str());
  return code == EINVAL ? EIO : code;
}

struct stat to_stat(const TreeFuseContext& c, const TreeStat& s) {
  struct stat st{};
  st.st_ino = to_fuse(c, s.ino);
  st.st_mode = s.mode;
  st.st_nlink = s.nlink;
  st.st_uid = s.uid;
  st.st_gid = s.gid;
  st.st_size = static_cast<off_t>(s.size);
  st.st_blocks = static_cast<blkcnt_t>(s.blocks);
  st.st_blksize = 4096;
  st.st_rdev = s.rdev;
  st.st_atim = s.atime;
  st.st_mtim = s.mtime;
  st.st_ctim = s.ctime;
  return st;
}

fuse_entry_param entry_of(const TreeFuseContext& c, const TreeStat& s) {
  fuse_entry_param e{};
  e.ino = to_fuse(c, s.ino);
  e.attr = to_stat(c, s);
  e.attr_timeout = c.timeout;
  e.entry_timeout = c.timeout;
  return e;
}

void op_init(void*, struct fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, "lookup", [&] {
    auto& c = ctx_of(req);
    Result<TreeStat> st = Status::Error(ENOENT, "");
    {
      std::lock_guard<std::mutex> g(c.mu);
      auto ino = c.tree->lookup(to_tree(c, parent), name);
      st = ino.ok() ? c.tree->stat(*ino) : Result<TreeStat>(ino.status());
    }
    if (!st.ok()) {
      if (st.status().code() == ENOENT) {
        // A negative entry the kernel may cache: nothing changes this tree.
        fuse_entry_param e{};
        e.entry_timeout = c.timeout;
        fuse_reply_entry(req, &e);
        return;
      }
      fuse_reply_err(req, err_of(st.status()));
      return;
    }
    fuse_entry_param e = entry_of(c, *st);
    fuse_reply_entry(req, &e);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }
void op_forget_multi(fuse_req_t req, size_t, struct fuse_forget_data*) { fuse_reply_none(req); }

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  guarded(req, "getattr", [&] {
    auto& c = ctx_of(req);
    Result<TreeStat> st = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.mu);
      st = c.tree->stat(to_tree(c, ino));
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st.status()));
    struct stat s = to_stat(c, *st);
    fuse_reply_attr(req, &s, c.timeout);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guarded(req, "readlink", [&] {
    auto& c = ctx_of(req);
    Result<std::string> target = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.mu);
      target = c.tree->read_link(to_tree(c, ino));
    }
    if (!target.ok()) return (void)fuse_reply_err(req, err_of(target.status()));
    fuse_reply_readlink(req, target->c_str());
  });
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "open", [&] {
    auto& c = ctx_of(req);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return (void)fuse_reply_err(req, EROFS);
    Result<TreeStat> st = Status::Error(EIO, "");
    {
      std::lock_guard<std::mutex> g(c.mu);
      st = c.tree->stat(to_tree(c, ino));
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st.status()));
    if (S_ISDIR(st->mode)) return (void)fuse_reply_err(req, EISDIR);
    fi->keep_cache = 1;  // nothing changes the tree under the page cache
    fuse_reply_open(req, fi);
  });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, "read", [&] {
    auto& c = ctx_of(req);
    if (off < 0) return (void)fuse_reply_err(req, EINVAL);
    size = std::min(size, kMaxReadBytes);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[size]);
    size_t done = 0;
    Status err;
    {
      std::lock_guard<std::mutex> g(c.mu);
      uint64_t t = to_tree(c, ino);
      // A reader may return short counts before the end; keep asking until it gives nothing more.
      while (done < size) {
        auto n = c.tree->read(t, static_cast<uint64_t>(off) + done, std::span<uint8_t>(buf.get() + done, size - done));
        if (!n.ok()) {
          err = n.status();
          break;
        }
        if (*n == 0) break;
        done += *n;
      }
    }
    if (!err.ok()) return (void)fuse_reply_err(req, err_of(err));
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), done);
  });
}

void op_release(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }

// The listing is taken once at opendir, so a readdir continuing at an offset sees the same entries.
struct DirHandle {
  std::vector<TreeEntry> entries;  // "." and ".." first
};

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "opendir", [&] {
    auto& c = ctx_of(req);
    auto h = std::make_shared<DirHandle>();
    Status st;
    {
      std::lock_guard<std::mutex> g(c.mu);
      uint64_t t = to_tree(c, ino);
      std::vector<TreeEntry> list;
      st = c.tree->read_dir(t, list);
      if (st.ok()) {
        // The tree does not name a directory's parent; the kernel resolves ".." itself, so its number is cosmetic.
        h->entries.push_back({".", t, S_IFDIR});
        h->entries.push_back({"..", t, S_IFDIR});
        for (auto& e : list) h->entries.push_back(std::move(e));
      }
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fi->keep_cache = 1;
    fi->cache_readdir = 1;
    {
      std::lock_guard<std::mutex> g(c.mu);
      c.open_dirs[fi->fh] = h;
    }
    if (fuse_reply_open(req, fi) != 0) {
      std::lock_guard<std::mutex> g(c.mu);
      c.open_dirs.erase(fi->fh);
    }
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  guarded(req, "readdir", [&] {
    auto& c = ctx_of(req);
    auto* h = reinterpret_cast<DirHandle*>(fi->fh);
    reply_dir_entries(req, size, off, h->entries.size(), [&](size_t i, char* out, size_t room) {
      const auto& e = h->entries[i];
      struct stat st{};
      st.st_ino = to_fuse(c, e.ino);
      st.st_mode = e.type;  // 0 (unknown type) is DT_UNKNOWN for the kernel
      return fuse_add_direntry(req, out, room, e.name.c_str(), &st, static_cast<off_t>(i + 1));
    });
  });
}

// readdir with attributes, so `find`, `ls -l` and `du` need no lookup per entry.
void op_readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  guarded(req, "readdirplus", [&] {
    auto& c = ctx_of(req);
    auto* h = reinterpret_cast<DirHandle*>(fi->fh);
    std::lock_guard<std::mutex> g(c.mu);
    reply_dir_entries(req, size, off, h->entries.size(), [&](size_t i, char* out, size_t room) {
      const auto& d = h->entries[i];
      fuse_entry_param e{};
      Result<TreeStat> st = Status::Error(ENOENT, "");
      if (i >= 2) st = c.tree->stat(d.ino);
      if (st.ok()) {
        e = entry_of(c, *st);
      } else {
        // "." and "..", or an unreadable inode: a name only (no lookup count taken); the kernel asks if it needs more.
        if (i >= 2) err_of(st.status());
        e.attr.st_ino = to_fuse(c, d.ino);
        e.attr.st_mode = d.type;
      }
      return fuse_add_direntry_plus(req, out, room, d.name.c_str(), &e, static_cast<off_t>(i + 1));
    });
  });
}

void op_releasedir(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  auto& c = ctx_of(req);
  {
    std::lock_guard<std::mutex> g(c.mu);
    c.open_dirs.erase(fi->fh);
  }
  fuse_reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  guarded(req, "statfs", [&] {
    auto& c = ctx_of(req);
    struct statvfs sv{};
    sv.f_bsize = sv.f_frsize = c.statfs.block_size;
    sv.f_blocks = c.statfs.total_blocks;
    sv.f_bfree = sv.f_bavail = std::min(c.statfs.free_blocks, c.statfs.total_blocks);
    sv.f_files = c.statfs.total_inodes;
    sv.f_ffree = sv.f_favail = std::min(c.statfs.free_inodes, c.statfs.total_inodes);
    sv.f_namemax = c.statfs.name_max;
    sv.f_flag = ST_RDONLY;
    fuse_reply_statfs(req, &sv);
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
      std::lock_guard<std::mutex> g(c.mu);
      v = c.tree->get_xattr(to_tree(c, ino), name);
    }
    if (!v.ok()) return (void)fuse_reply_err(req, err_of(v.status()));
    reply_sized(req, *v, size);
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  guarded(req, "listxattr", [&] {
    auto& c = ctx_of(req);
    std::vector<std::string> names;
    Status st;
    {
      std::lock_guard<std::mutex> g(c.mu);
      st = c.tree->list_xattrs(to_tree(c, ino), names);
    }
    if (!st.ok()) return (void)fuse_reply_err(req, err_of(st));
    std::string all;
    for (const auto& n : names) {
      all += n;
      all += '\0';
    }
    reply_sized(req, all, size);
  });
}

// Everything that would change the tree.
void op_setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, struct fuse_file_info*) { fuse_reply_err(req, EROFS); }
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); }
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
  fuse_reply_err(req, EROFS);
}
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
void op_write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, struct fuse_file_info*) {
  fuse_reply_err(req, EROFS);
}
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, struct fuse_file_info*) { fuse_reply_err(req, EROFS); }
void op_setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { fuse_reply_err(req, EROFS); }
void op_removexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.unlink = op_unlink;
  o.rmdir = op_unlink;
  o.symlink = op_symlink;
  o.rename = op_rename;
  o.link = op_link;
  o.open = op_open;
  o.read = op_read;
  o.write = op_write;
  o.release = op_release;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.releasedir = op_releasedir;
  o.statfs = op_statfs;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
  o.create = op_create;
  return o;
}();

}  // namespace

const fuse_lowlevel_ops& tree_fuse_ops() { return kOps; }

}  // namespace vdkit
