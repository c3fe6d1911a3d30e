// KernelMount: private FUSE raw file -> loop device -> kernel mount, and their teardown (see kernel_mount.h).
#define FUSE_USE_VERSION 314
#include "guestfs/kernel_mount.h"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "blockcore/base/caught_exception.h"
#include "blockcore/base/checked.h"

namespace vdkit::guestfs {
namespace {

// Free loop devices can be taken by someone else between LOOP_CTL_GET_FREE and LOOP_CONFIGURE: try again.
constexpr int kMaxLoopAttempts = 16;
// Mounts that can be live at once in one process (each has a slot in the signal teardown table).
constexpr int kMaxLiveMounts = 16;
// FUSE worker threads serving the raw file (the loop device submits several requests at once).
constexpr int kRawViewThreads = 4;
constexpr int kTeardownSignals[] = {SIGINT, SIGTERM, SIGHUP};

// ------------------------------------------------------------------ the private raw file

// Inode 1 is raw/, inode 2 is raw/disk.
constexpr fuse_ino_t kDiskIno = 2;
constexpr const char* kDiskName = "disk";

struct RawView {
  std::shared_ptr<BlockDevice> device;
  bool writable = false;
  std::atomic<bool> failed{false};  // a read or write failed: Unmount reports it
  std::string first_error;         // set once, by whoever flips `failed`
};

RawView& view_of(fuse_req_t req) { return *static_cast<RawView*>(fuse_req_userdata(req)); }

struct stat raw_stat(const RawView& v, fuse_ino_t ino) {
  struct stat st {};
  st.st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0700;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | (v.writable ? 0600 : 0400);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(v.device->size());
    st.st_blksize = 1 << 16;
    st.st_blocks = static_cast<blkcnt_t>(div_round_up(v.device->size(), 512));
  }
  return st;
}

// Runs a callback body; an exception becomes EIO/ENOMEM to the kernel (no exception crosses the C boundary).
template <typename F>
void guarded(fuse_req_t req, F&& body) noexcept {
  try {
    body();
  } catch (...) {
    CaughtException e = describe_caught_exception();
    std::fprintf(stderr, "vdkit: kernel mount raw view: %s\n", e.message);
    fuse_reply_err(req, e.code);
  }
}

int fail(RawView& v, const Status& st) {
  bool expected = false;
  if (v.failed.compare_exchange_strong(expected, true)) v.first_error = st.message();
  std::fprintf(stderr, "vdkit: kernel mount raw view: %s\n", st.message().c_str());
  return st.code() == EINVAL ? EIO : st.code();
}

void raw_init(void*, struct fuse_conn_info* conn) {
  conn->max_write = 1 << 20;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
}

void raw_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, [&] {
    if (parent != FUSE_ROOT_ID || std::strcmp(name, kDiskName) != 0) return (void)fuse_reply_err(req, ENOENT);
    fuse_entry_param e{};
    e.ino = kDiskIno;
    e.attr = raw_stat(view_of(req), kDiskIno);
    e.attr_timeout = e.entry_timeout = 3600;
    fuse_reply_entry(req, &e);
  });
}

void raw_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  guarded(req, [&] {
    if (ino != FUSE_ROOT_ID && ino != kDiskIno) return (void)fuse_reply_err(req, ENOENT);
    struct stat st = raw_stat(view_of(req), ino);
    fuse_reply_attr(req, &st, 3600);
  });
}

void raw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  if (ino != kDiskIno) return (void)fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY && !view_of(req).writable) return (void)fuse_reply_err(req, EROFS);
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void raw_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, [&] {
    RawView& v = view_of(req);
    if (ino != kDiskIno || off < 0) return (void)fuse_reply_err(req, EINVAL);
    uint64_t dsize = v.device->size();
    if (static_cast<uint64_t>(off) >= dsize) return (void)fuse_reply_buf(req, nullptr, 0);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, dsize - static_cast<uint64_t>(off)));
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n]);
    Status st = v.device->read(static_cast<uint64_t>(off), std::span<uint8_t>(buf.get(), n));
    if (!st.ok()) return (void)fuse_reply_err(req, fail(v, st));
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), n);
  });
}

void raw_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, struct fuse_file_info*) {
  guarded(req, [&] {
    RawView& v = view_of(req);
    if (ino != kDiskIno || off < 0) return (void)fuse_reply_err(req, EINVAL);
    if (!v.writable) return (void)fuse_reply_err(req, EROFS);
    uint64_t dsize = v.device->size();
    if (static_cast<uint64_t>(off) >= dsize) return (void)fuse_reply_err(req, ENOSPC);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, dsize - static_cast<uint64_t>(off)));
    Status st = v.device->write(static_cast<uint64_t>(off),
                                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), n));
    if (!st.ok()) return (void)fuse_reply_err(req, fail(v, st));
    fuse_reply_write(req, n);
  });
}

void raw_fsync(fuse_req_t req, fuse_ino_t, int, struct fuse_file_info*) {
  guarded(req, [&] {
    RawView& v = view_of(req);
    Status st = v.writable && v.device->caps().can_flush ? v.device->flush() : Status::Ok();
    fuse_reply_err(req, st.ok() ? 0 : fail(v, st));
  });
}

void raw_flush(fuse_req_t req, fuse_ino_t, struct fuse_file_info*) { fuse_reply_err(req, 0); }

const fuse_lowlevel_ops& raw_ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = raw_init;
    o.lookup = raw_lookup;
    o.getattr = raw_getattr;
    o.open = raw_open;
    o.read = raw_read;
    o.write = raw_write;
    o.fsync = raw_fsync;
    o.flush = raw_flush;
    return o;
  }();
  return ops;
}

// ------------------------------------------------------------------ teardown on signals

// What a signal handler needs to undo one mount with async-signal-safe system calls only.
struct SignalRecord {
  char mount_point[PATH_MAX] = {};
  bool mounted = false;
  bool private_mount_point = false;
  int loop_fd = -1;
  char raw_dir[PATH_MAX] = {};
  char dir[PATH_MAX] = {};
};

std::atomic<SignalRecord*> g_live[kMaxLiveMounts];
std::mutex g_handlers_mu;  // installing/restoring the handlers (never taken in a handler)
int g_handler_users = 0;
struct sigaction g_previous[std::size(kTeardownSignals)];

void teardown_record(SignalRecord& r) {
  if (r.mounted) ::umount2(r.mount_point, MNT_DETACH);
  if (r.loop_fd >= 0) {
    ::ioctl(r.loop_fd, LOOP_CLR_FD, 0);
    ::close(r.loop_fd);
  }
  if (r.raw_dir[0]) ::umount2(r.raw_dir, MNT_DETACH);
  if (r.private_mount_point) ::rmdir(r.mount_point);
  if (r.raw_dir[0]) ::rmdir(r.raw_dir);
  if (r.dir[0]) ::rmdir(r.dir);
}

extern "C" void on_teardown_signal(int sig) {
  size_t k = 0;
  while (k < std::size(kTeardownSignals) && kTeardownSignals[k] != sig) ++k;
  if (k == std::size(kTeardownSignals)) return;
  const struct sigaction& prev = g_previous[k];
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler == SIG_IGN) return;
  if ((prev.sa_flags & SA_SIGINFO) || prev.sa_handler != SIG_DFL) {
    // Someone (convert) handles it and will stop in order: its normal path unmounts.
    if (prev.sa_flags & SA_SIGINFO)
      prev.sa_sigaction(sig, nullptr, nullptr);
    else
      prev.sa_handler(sig);
    return;
  }
  // The process is about to die: undo every mount, then die of the signal as it would have.
  for (auto& slot : g_live) {
    SignalRecord* r = slot.exchange(nullptr);
    if (r) teardown_record(*r);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers() {
  std::lock_guard lock(g_handlers_mu);
  if (g_handler_users++ > 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_teardown_signal;
  sigemptyset(&sa.sa_mask);
  for (size_t k = 0; k < std::size(kTeardownSignals); ++k) sigaction(kTeardownSignals[k], &sa, &g_previous[k]);
}

void restore_handlers() {
  std::lock_guard lock(g_handlers_mu);
  if (--g_handler_users > 0) return;
  for (size_t k = 0; k < std::size(kTeardownSignals); ++k) sigaction(kTeardownSignals[k], &g_previous[k], nullptr);
}

bool copy_path(char (&dst)[PATH_MAX], const std::string& src) {
  if (src.size() >= PATH_MAX) return false;
  std::memcpy(dst, src.c_str(), src.size() + 1);
  return true;
}

std::string join_options(const std::vector<std::string>& opts) {
  std::string s;
  for (const auto& o : opts) s += (s.empty() ? "" : ",") + o;
  return s;
}

// A GuestFs over the mount point whose describe() names the file system and the loop device.
class KernelGuestFs : public GuestFs {
 public:
  KernelGuestFs(GuestFsPtr inner, std::string what) : inner_(std::move(inner)), what_(std::move(what)) {}
  Result<std::string> read_file(const std::string& path, size_t max_bytes) override {
    return inner_->read_file(path, max_bytes);
  }
  bool is_file(const std::string& path) override { return inner_->is_file(path); }
  bool is_dir(const std::string& path) override { return inner_->is_dir(path); }
  std::vector<std::string> list_dir(const std::string& path) override { return inner_->list_dir(path); }
  Status write_file(const std::string& path, std::string_view data) override { return inner_->write_file(path, data); }
  bool writable() const override { return inner_->writable(); }
  std::string describe() const override { return what_; }

 private:
  GuestFsPtr inner_;
  std::string what_;
};

}  // namespace

struct KernelMount::Impl {
  KernelMountOptions options;
  RawView view;
  SignalRecord record;
  int slot = -1;
  bool handlers = false;
  struct fuse_session* session = nullptr;
  bool fuse_mounted = false;
  std::thread server;
  bool torn_down = false;
};

Result<std::unique_ptr<KernelMount>> KernelMount::Mount(std::shared_ptr<BlockDevice> device,
                                                        const KernelMountOptions& options) {
  const std::string what = options.what.empty() ? options.fs_type : options.what;
  if (geteuid() != 0)
    return Status::Error(EPERM, "mounting " + what + " with the kernel needs root (a loop device and a mount)");
  if (options.writable && !device->caps().writable)
    return Status::Error(EROFS, "mounting " + what + " read-write needs a writable device");
  if (options.fs_type.empty() || options.fs_type.find_first_of(",/ ") != std::string::npos)
    return Status::Invalid("no usable file-system type to mount " + what + " with");

  std::unique_ptr<KernelMount> km(new KernelMount());
  km->impl_ = std::make_unique<Impl>();
  Impl& m = *km->impl_;
  m.options = options;
  m.view.device = std::move(device);
  m.view.writable = options.writable;

  // The slot first, so a failure later tears down through the same path as everything else.
  for (int i = 0; i < kMaxLiveMounts && m.slot < 0; ++i) {
    SignalRecord* none = nullptr;
    if (g_live[i].compare_exchange_strong(none, &m.record)) m.slot = i;
  }
  if (m.slot < 0)
    return Status::Error(EMFILE, "more than " + std::to_string(kMaxLiveMounts) + " kernel mounts in one process");
  install_handlers();
  m.handlers = true;

  // 1. The private folder.
  std::string base = "/run/vdkit";
  ::mkdir(base.c_str(), 0700);
  std::string tmpl = base + "/kmount.XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Status::FromErrno(errno, "creating a private folder under " + base);
  km->dir_ = tmpl;
  const std::string raw_dir = km->dir_ + "/raw";
  if (!copy_path(m.record.dir, km->dir_)) return Status::Invalid("private folder name too long");
  if (::mkdir(raw_dir.c_str(), 0700) != 0) return Status::FromErrno(errno, "creating " + raw_dir);
  copy_path(m.record.raw_dir, raw_dir);
  if (options.mount_point.empty()) {
    km->mount_point_ = km->dir_ + "/mnt";
    if (::mkdir(km->mount_point_.c_str(), 0700) != 0) return Status::FromErrno(errno, "creating " + km->mount_point_);
    m.record.private_mount_point = true;
  } else {
    km->mount_point_ = options.mount_point;
  }
  if (!copy_path(m.record.mount_point, km->mount_point_))
    return Status::Invalid("mount point name too long: " + km->mount_point_);

  // 2. The FUSE raw view, served by threads that never take the teardown signals (the handler may wait on them).
  {
    std::string opts = "fsname=vdkit-raw,subtype=vdkit" + std::string(options.writable ? "" : ",ro");
    std::vector<std::string> argv = {"vdkit", "-o", opts};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
    m.session = fuse_session_new(&args, &raw_ops(), sizeof(fuse_lowlevel_ops), &m.view);
    if (!m.session) return Status::IoError("cannot create the FUSE session of the raw view (is /dev/fuse there?)");
    if (fuse_session_mount(m.session, raw_dir.c_str()) != 0)
      return Status::IoError("cannot mount the private raw view on " + raw_dir);
    m.fuse_mounted = true;
    sigset_t block, old;
    sigemptyset(&block);
    for (int s : kTeardownSignals) sigaddset(&block, s);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    m.server = std::thread([session = m.session] {
      struct fuse_loop_config* lc = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(lc, kRawViewThreads);
      fuse_session_loop_mt(session, lc);
      fuse_loop_cfg_destroy(lc);
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  // 3. The loop device.
  const std::string raw_file = raw_dir + "/" + kDiskName;
  int backing = ::open(raw_file.c_str(), (options.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (backing < 0) return Status::FromErrno(errno, "opening the private raw view " + raw_file);
  int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) {
    int err = errno;
    ::close(backing);
    return Status::FromErrno(err, "opening /dev/loop-control");
  }
  Status loop_error = Status::IoError("no free loop device after " + std::to_string(kMaxLoopAttempts) + " tries");
  for (int attempt = 0; attempt < kMaxLoopAttempts && m.record.loop_fd < 0; ++attempt) {
    int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      loop_error = Status::FromErrno(errno, "asking /dev/loop-control for a free loop device");
      break;
    }
    std::string name = "/dev/loop" + std::to_string(n);
    int fd = ::open(name.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      loop_error = Status::FromErrno(errno, "opening " + name);
      continue;
    }
    struct loop_config cfg {};
    cfg.fd = static_cast<uint32_t>(backing);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (options.writable ? 0 : LO_FLAGS_READ_ONLY);
    std::snprintf(reinterpret_cast<char*>(cfg.info.lo_file_name), LO_NAME_SIZE, "vdkit:%s", what.c_str());
    if (::ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
      m.record.loop_fd = fd;
      km->loop_name_ = name;
      break;
    }
    int err = errno;
    loop_error = Status::FromErrno(err, "attaching " + name + " to " + raw_file);
    ::close(fd);
    if (err != EBUSY) break;
  }
  ::close(ctl);
  ::close(backing);  // the loop device holds its own reference
  if (m.record.loop_fd < 0) return loop_error;

  // 4. The mount. Guest binaries never run and guest device nodes never open on the host.
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (options.writable ? 0 : MS_RDONLY);
  std::string data = join_options(options.options);
  if (::mount(km->loop_name_.c_str(), km->mount_point_.c_str(), options.fs_type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    int err = errno;
    return Status::FromErrno(err, "the host kernel could not mount " + what + " (" + options.fs_type + ", options '" +
                                      data + "') from " + km->loop_name_ +
                                      "; the kernel log (dmesg) says why");
  }
  m.record.mounted = true;
  return km;
}

Result<GuestFsPtr> KernelMount::open_guest_fs() {
  if (!impl_ || impl_->torn_down || !impl_->record.mounted)
    return Status::Error(ENOTCONN, "the kernel mount is gone");
  VDKIT_ASSIGN_OR_RETURN(GuestFsPtr fs, open_folder_guest(mount_point_, impl_->options.writable));
  std::string what = (impl_->options.what.empty() ? impl_->options.fs_type : impl_->options.what) +
                     " (mounted by the kernel from " + loop_name_ + ")";
  return GuestFsPtr(new KernelGuestFs(std::move(fs), what));
}

Status KernelMount::Unmount() {
  if (!impl_ || impl_->torn_down) return Status::Ok();
  Impl& m = *impl_;
  // Take the record away from the signal handler first; give it back if we have to stop half-way.
  if (m.slot >= 0) {
    SignalRecord* mine = &m.record;
    if (!g_live[m.slot].compare_exchange_strong(mine, nullptr)) {
      // A signal handler already tore everything down.
      m.torn_down = true;
      return Status::Error(EINTR, "the kernel mount was torn down by a signal");
    }
  }
  if (m.record.mounted) {
    if (::umount2(mount_point_.c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
      int err = errno;
      if (m.slot >= 0) g_live[m.slot].store(&m.record);
      return Status::FromErrno(err, "unmounting " + mount_point_);
    }
    m.record.mounted = false;
  }
  Status result;
  if (m.record.loop_fd >= 0) {
    if (::ioctl(m.record.loop_fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO)
      result = Status::FromErrno(errno, "detaching " + loop_name_);
    ::close(m.record.loop_fd);
    m.record.loop_fd = -1;
  }
  if (m.session) {
    fuse_session_exit(m.session);
    // Unmounting the private view ends the connection once the loop device has let go of the file, which wakes
    // the server threads.
    if (m.fuse_mounted) fuse_session_unmount(m.session);
    m.fuse_mounted = false;
    if (m.server.joinable()) m.server.join();
    fuse_session_destroy(m.session);
    m.session = nullptr;
  }
  if (m.record.private_mount_point) ::rmdir(mount_point_.c_str());
  if (m.record.raw_dir[0]) ::rmdir(m.record.raw_dir);
  if (!dir_.empty()) ::rmdir(dir_.c_str());
  if (m.handlers) restore_handlers();
  m.handlers = false;
  m.slot = -1;
  m.torn_down = true;
  if (result.ok() && m.view.failed.load())
    result = Status::IoError("the kernel's I/O through the raw view failed: " + m.view.first_error);
  if (result.ok() && m.options.writable && m.view.device->caps().can_flush) result = m.view.device->flush();
  return result;
}

KernelMount::~KernelMount() {
  if (!impl_) return;
  Status st = Unmount();
  if (st.code() == EBUSY) {
    // Something still uses the mount: detach it lazily so nothing is left visible, then let go of the rest.
    // The server threads must outlive the lazily unmounted file system's last writes, so they are not joined:
    // they (and the session they use) end with the process.
    ::umount2(mount_point_.c_str(), MNT_DETACH);
    impl_->record.mounted = false;
    if (impl_->fuse_mounted) ::umount2(impl_->record.raw_dir, MNT_DETACH);
    impl_->fuse_mounted = false;
    if (impl_->server.joinable()) impl_->server.detach();
    impl_->session = nullptr;
    st = Unmount();
  }
  if (!st.ok()) std::fprintf(stderr, "vdkit: tearing down the kernel mount: %s\n", st.message().c_str());
}

Status unmount_kernel_mount_point(const std::string& mount_point) {
  if (::umount2(mount_point.c_str(), 0) != 0) return Status::FromErrno(errno, "unmounting " + mount_point);
  return Status::Ok();
}

}  // namespace vdkit::guestfs
