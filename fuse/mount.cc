// vdkit mount/umount: the source, its write layer, the file system choice, the FUSE session, the daemon and its state file.
//
// The background mode forks before anything is opened (no threads or rings
// exist yet), the child does all the work and reports "ready" or its error
// through a pipe, so the parent's exit status tells scripts whether the mount
// can be used right away.
#include "fuse/mount.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "blockcore/layers/device_stack.h"
#include "blockcore/layers/overlay.h"
#include "blockcore/layers/partition.h"
#include "fuse/fuse_views.h"
#include "fuse/tree_fuse.h"
#include "guestfs/btrfs/btrfs_tree.h"
#include "guestfs/ext2/journal_replay.h"
#include "guestfs/kernel_mount.h"
#include "guestfs/probe.h"
#include "guestfs/xfs/xfs_tree.h"

extern char** environ;

namespace vdkit {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------- helpers

// Runs a program and waits for it; its output goes where ours goes.
int run_program(const std::vector<std::string>& argv) {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, a[0], nullptr, nullptr, a.data(), environ) != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// The folder of state files: one per mount, so `vdkit umount` knows the daemon and any loop mount.
std::string state_dir() {
  if (geteuid() == 0) return "/run/vdkit";
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) return std::string(xdg) + "/vdkit";
  return "/tmp/vdkit-" + std::to_string(getuid());
}

// An absolute, normalised path that does not touch the final component (a dead FUSE mount cannot be stat'ed).
std::string mountpoint_key_path(const std::string& mp) {
  fs::path p = fs::absolute(mp).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  std::error_code ec;
  fs::path parent = fs::canonical(fs::path(s).parent_path(), ec);
  if (!ec) s = (parent / fs::path(s).filename()).string();
  return s;
}

std::string state_file_for(const std::string& mp_path) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016zx", std::hash<std::string>{}(mp_path));
  return state_dir() + "/mount-" + buf + ".state";
}

struct MountState {
  pid_t pid = 0;
  std::string mountpoint;
  std::string kernel_fuse_dir;  // --kernel: the private raw view under the loop mount
};

Status write_state(const MountState& s) {
  std::error_code ec;
  fs::create_directories(state_dir(), ec);
  chmod(state_dir().c_str(), 0700);
  std::string path = state_file_for(s.mountpoint), tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "pid=" << s.pid << "\nmountpoint=" << s.mountpoint << "\nkernel_fuse_dir=" << s.kernel_fuse_dir << "\n";
    if (!f) return Status::IoError("cannot write the mount state file " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "renaming " + tmp);
  return Status::Ok();
}

std::optional<MountState> read_state(const std::string& mp_path) {
  std::ifstream f(state_file_for(mp_path));
  if (!f) return std::nullopt;
  MountState s;
  std::string line;
  while (std::getline(f, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "pid") s.pid = static_cast<pid_t>(std::atol(v.c_str()));
    else if (k == "mountpoint") s.mountpoint = v;
    else if (k == "kernel_fuse_dir") s.kernel_fuse_dir = v;
  }
  if (s.mountpoint != mp_path) return std::nullopt;  // a hash collision: not ours
  return s;
}

std::string describe(const Partition& p) {
  return "partition " + std::to_string(p.number) + " (" + p.scheme + " type " + p.type + ")";
}

// The type guestfs::probe_fs finds at the start of dev; "" when unknown or unreadable.
std::string fs_type_of(BlockDevice& dev) {
  auto probe = guestfs::probe_fs(dev);
  return probe.ok() ? probe->type : std::string();
}

// File systems vdkit shows itself: ext2/3/4 (read-write too), XFS and Btrfs (read-only, through guestfs/xfs and
// guestfs/btrfs).
bool shown_by_vdkit(const std::string& type) {
  return guestfs::is_ext(type) || type == guestfs::kFsXfs || type == guestfs::kFsBtrfs;
}

// What gets mounted, once the source and its write layer are open.
struct Plan {
  std::shared_ptr<BlockDevice> disk;        // the whole device (with its write layer)
  std::vector<Partition> partitions;
  std::shared_ptr<BlockDevice> fs_device;   // default view: the ext file system's device
  std::string what;                         // "partition 1 (mbr type 0x83)" or "the whole disk"
  std::string kernel_file = "disk";         // --kernel: the raw view's file of fs_device
  // LVs that can be opened, by their /dev/mapper names ("ubuntu--vg-ubuntu--lv"), for the raw view and the choice.
  std::vector<std::pair<std::string, std::shared_ptr<BlockDevice>>> lvs;
  std::vector<GuestDisk> disks;             // `disk` and the --disk ones, searched for PVs
};

// lvm2's /dev/mapper name: VG-LV with every '-' inside a name doubled.
std::string mapper_name(const std::string& vg, const std::string& lv) {
  auto dbl = [](const std::string& s) {
    std::string o;
    for (char c : s) o += c == '-' ? std::string("--") : std::string(1, c);
    return o;
  };
  return dbl(vg) + "-" + dbl(lv);
}

// Opens every visible LV the scan allows; the others are said once on stderr (a refused thin pool must not stop
// a mount of the disk's other volumes).
void open_lvs(Plan& plan) {
  auto scan = scan_volume_groups(plan.disks);
  if (!scan.ok()) {
    std::fprintf(stderr, "vdkit mount: warning: volume groups not read: %s\n", scan.status().message().c_str());
    return;
  }
  for (const auto& w : scan->warnings) std::fprintf(stderr, "vdkit mount: warning: %s\n", w.c_str());
  for (const auto& f : scan->vgs)
    for (const auto& lv : f.vg.lvs) {
      if (!lv.visible) continue;
      auto dev = lvm::open_logical_volume(f, lv.name);
      if (!dev.ok()) {
        std::fprintf(stderr, "vdkit mount: note: %s\n", dev.status().message().c_str());
        continue;
      }
      plan.lvs.emplace_back(mapper_name(f.vg.name, lv.name), std::shared_ptr<BlockDevice>(std::move(*dev)));
    }
}

Result<std::shared_ptr<BlockDevice>> open_layers(const MountConfig& cfg, const std::string& source) {
  if (source != cfg.source && !cfg.overlay_path.empty())
    return Status::Invalid("--overlay covers one disk; with --disk, --rw keeps writes in memory or --in-place");
  StackSpec spec;
  spec.source = source;
  spec.open = cfg.open;
  if (cfg.writable)
    spec.writes = cfg.in_place                   ? WriteLayer::kInPlace
                  : !cfg.overlay_path.empty() ? WriteLayer::kQcow2Overlay
                                              : WriteLayer::kMemoryOverlay;
  spec.overlay_path = cfg.overlay_path;
  spec.labels = {"opening '" + source + "'", "creating the overlay '" + cfg.overlay_path + "'", "--in-place",
                 "use --overlay PATH", "", ""};
  VDKIT_ASSIGN_OR_RETURN(DeviceStack stack, open_device_stack(spec));
  return stack.disk;
}

Result<Plan> check_fs_type(Plan& plan, const MountConfig& cfg);

Result<Plan> make_plan(const MountConfig& cfg) {
  Plan plan;
  VDKIT_ASSIGN_OR_RETURN(plan.disk, open_layers(cfg, cfg.source));
  plan.disks.push_back({cfg.source, plan.disk});
  for (const auto& path : cfg.lv_disks) {
    VDKIT_ASSIGN_OR_RETURN(auto dev, open_layers(cfg, path));
    plan.disks.push_back({path, std::move(dev)});
  }
  auto table = read_partition_table(*plan.disk);
  if (!table.ok()) {
    if (!cfg.raw) return table.status().Context("reading the partition table");
    std::fprintf(stderr, "vdkit mount: warning: %s; showing only the whole disk\n", table.status().message().c_str());
  } else {
    plan.partitions = std::move(*table);
  }
  if (cfg.raw) {
    open_lvs(plan);
    return plan;
  }
  if (!cfg.lv.empty()) {
    VDKIT_ASSIGN_OR_RETURN(LvName n, parse_lv_name(cfg.lv));
    auto lv = open_lv_on(plan.disks, cfg.lv);
    if (!lv.ok()) return lv.status().Context("--lv " + cfg.lv);
    plan.fs_device = std::shared_ptr<BlockDevice>(std::move(*lv));
    plan.what = "LV " + n.vg + "/" + n.lv;
    plan.kernel_file = mapper_name(n.vg, n.lv);
    plan.lvs.emplace_back(plan.kernel_file, plan.fs_device);
    return check_fs_type(plan, cfg);
  }

  const Partition* chosen = nullptr;
  if (cfg.partition > 0) {
    if (plan.partitions.empty())
      return Status::Invalid("'" + cfg.source + "' has no partition table; omit --partition to use the whole disk");
    VDKIT_ASSIGN_OR_RETURN(Partition p, find_partition(*plan.disk, cfg.partition, cfg.source));
    for (const auto& q : plan.partitions)
      if (q.number == p.number) chosen = &q;
  }
  auto view_of = [&](const Partition* p) -> std::shared_ptr<BlockDevice> {
    if (!p) return plan.disk;
    return std::shared_ptr<BlockDevice>(make_partition_view(plan.disk, p->offset, p->length));
  };
  if (!chosen && !plan.partitions.empty()) {
    // The first partition holding a file system this mode can show.
    std::string seen;
    for (const auto& p : plan.partitions) {
      auto v = view_of(&p);
      std::string t = fs_type_of(*v);
      if (shown_by_vdkit(t) || (cfg.kernel && !t.empty() && t != guestfs::kFsSwap && t != guestfs::kFsLvm2Member &&
                                 t != guestfs::kFsLuks)) {
        chosen = &p;
        break;
      }
      seen += (seen.empty() ? "" : ", ") + std::string("p") + std::to_string(p.number) + ": " +
              (t.empty() ? "unknown" : t);
    }
    if (!chosen) {
      return Status::Unsupported("no ext2/3/4, XFS or Btrfs file system on any partition (" + seen + ")");
    }
  }
  plan.fs_device = view_of(chosen);
  plan.what = chosen ? describe(*chosen) : std::string("the whole disk");
  plan.kernel_file = chosen ? "p" + std::to_string(chosen->number) : "disk";
  return check_fs_type(plan, cfg);
}

// The chosen device holds a file system this mode can show.
Result<Plan> check_fs_type(Plan& plan, const MountConfig& cfg) {
  std::string t = fs_type_of(*plan.fs_device);
  if (cfg.kernel) {
    if (t.empty()) return Status::Unsupported("no known file system on " + plan.what);
    return plan;
  }
  if (t == guestfs::kFsXfs && cfg.writable)
    return Status::Unsupported(plan.what + " holds XFS, which vdkit shows read-only (writing XFS from userspace is "
                               "not safe); drop --rw, or add --kernel (root) to write it through the kernel's driver");
  if (t == guestfs::kFsBtrfs && cfg.writable)
    return Status::Unsupported(plan.what + " holds Btrfs, which vdkit shows read-only (it does not write Btrfs from "
                               "userspace); drop --rw, or add --kernel (root) to write it through the kernel's driver");
  if (!cfg.subvol.empty() && t != guestfs::kFsBtrfs)
    return Status::Invalid("--subvol needs a Btrfs; " + plan.what + " holds " + (t.empty() ? "no known file system" : t));
  if (!shown_by_vdkit(t)) {
    return Status::Unsupported(plan.what + " holds " + (t.empty() ? std::string("no known file system") : t) +
                               ", not ext2/3/4, XFS or Btrfs");
  }
  // A journal that needs recovery is replayed first, as the kernel does at mount: into the overlay (--rw), or into
  // a memory overlay for a read-only view. --in-place never replays into the image (the open refuses instead).
  auto journal = ext2::read_journal_state(plan.fs_device);
  if (!cfg.in_place && journal.ok() && journal->needs_recovery) {
    if (!cfg.writable) plan.fs_device = make_memory_overlay(plan.fs_device);
    auto r = ext2::replay_journal(plan.fs_device);
    if (!r.ok()) return r.status().Context("recovering the journal of " + plan.what);
    std::fprintf(stderr, "vdkit mount: %s: %s\n", plan.what.c_str(), r->summary().c_str());
    if (cfg.writable && !r->not_replayed.empty())
      return Status::Error(EROFS, "the journal of " + plan.what +
                                      " was only partly replayed; mount read-only to see what it holds");
  }
  return plan;
}

std::string sanitize_option(std::string s) {
  for (char& c : s)
    if (c == ',' || c == '\\' || c == '"' || c == '\n') c = '_';
  return s;
}

// A FUSE session over `ops`, mounted at `where`. Owns the session.
class Session {
 public:
  ~Session() {
    if (!se_) return;
    if (mounted_) fuse_session_unmount(se_);
    fuse_remove_signal_handlers(se_);
    fuse_session_destroy(se_);
  }
  Status Mount(const fuse_lowlevel_ops& ops, void* userdata, const std::string& where, const std::string& fsname,
               bool writable, bool debug) {
    std::vector<std::string> argv = {"vdkit"};
    std::string opts = "fsname=" + sanitize_option(fsname) + ",subtype=vdkit,default_permissions";
    if (!writable) opts += ",ro";
    if (geteuid() == 0) opts += ",allow_other";
    argv.push_back("-o");
    argv.push_back(opts);
    if (debug) argv.push_back("-d");
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
    se_ = fuse_session_new(&args, &ops, sizeof ops, userdata);
    // The session keeps its own copy of the options; option parsing may have reallocated argv.
    fuse_opt_free_args(&args);
    if (!se_) return Status::IoError("cannot create the FUSE session (is /dev/fuse there and fuse3 installed?)");
    if (fuse_set_signal_handlers(se_) != 0) return Status::IoError("cannot install signal handlers");
    if (fuse_session_mount(se_, where.c_str()) != 0)
      return Status::IoError("cannot mount on '" + where + "' (see the message above; is it an empty folder you own?)");
    mounted_ = true;
    return Status::Ok();
  }
  int Loop() {
    struct fuse_loop_config* lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, 16);
    fuse_loop_cfg_set_idle_threads(lc, 4);
    int r = fuse_session_loop_mt(se_, lc);
    fuse_loop_cfg_destroy(lc);
    return r;
  }
  void Exit() {
    if (se_) fuse_session_exit(se_);
  }

 private:
  struct fuse_session* se_ = nullptr;
  bool mounted_ = false;
};

// Reports readiness (or an error) to the waiting parent, once.
class Notifier {
 public:
  explicit Notifier(int fd) : fd_(fd) {}
  ~Notifier() { Send(Status::IoError("the mount daemon stopped before the mount was ready")); }
  // True when this call delivered the message (the first one does).
  bool Send(const Status& st) {
    if (fd_ < 0) return false;
    std::string msg = st.ok() ? "OK" : "ERR " + std::to_string(st.code()) + " " + st.message();
    ssize_t r = write(fd_, msg.data(), msg.size());
    (void)r;
    close(fd_);
    fd_ = -1;
    return true;
  }

 private:
  int fd_;
};

void detach_stdio(const std::string& log_path) {
  int null = open("/dev/null", O_RDWR);
  if (null < 0) return;
  dup2(null, STDIN_FILENO);
  dup2(null, STDOUT_FILENO);
  int err = log_path.empty() ? -1 : open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  dup2(err >= 0 ? err : null, STDERR_FILENO);
  if (err >= 0) close(err);
  close(null);
}

// Kernel options that show the image as it is on a read-only mount (a dirty log or journal is not replayed, which
// a read-only device could not take anyway); XFS also takes a UUID another mount already uses.
std::vector<std::string> kernel_options(const std::string& type, bool writable) {
  std::vector<std::string> o;
  if (type == guestfs::kFsXfs) o.push_back("nouuid");
  if (writable) return o;
  if (type == guestfs::kFsXfs) o.push_back("norecovery");
  if (type == guestfs::kFsExt3 || type == guestfs::kFsExt4) o.push_back("noload");
  if (type == guestfs::kFsBtrfs) o.push_back("rescue=nologreplay");
  return o;
}

// --subvol NAME|ID as the kernel's option: digits are an id.
std::string subvol_option(const std::string& subvol) {
  bool digits = !subvol.empty() && subvol.find_first_not_of("0123456789") == std::string::npos;
  return (digits ? "subvolid=" : "subvol=") + subvol;
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  return set;
}

// --kernel: the kernel mounts the file system over guestfs::KernelMount's private raw view; this process serves
// that view until `vdkit umount` (or Ctrl-C in the foreground) sends SIGTERM/SIGINT/SIGHUP, then tears it down.
Status serve_kernel(const MountConfig& cfg, const Plan& plan, const std::string& mp, MountState& state,
                    Notifier& notify) {
  sigset_t stop = stop_signals();
  guestfs::KernelMountOptions ko;
  ko.fs_type = fs_type_of(*plan.fs_device);
  ko.options = kernel_options(ko.fs_type, cfg.writable);
  if (!cfg.subvol.empty()) {
    if (ko.fs_type != guestfs::kFsBtrfs) return Status::Invalid("--subvol needs a Btrfs; " + plan.what + " holds " + ko.fs_type);
    ko.options.push_back(subvol_option(cfg.subvol));
  }
  ko.writable = cfg.writable;
  ko.what = ko.fs_type + " on " + plan.what;
  ko.mount_point = mp;
  VDKIT_ASSIGN_OR_RETURN(auto km, guestfs::KernelMount::Mount(plan.fs_device, ko));
  state.kernel_fuse_dir = km->private_dir();
  VDKIT_RETURN_IF_ERROR(write_state(state));
  notify.Send(Status::Ok());
  if (!cfg.foreground) detach_stdio(cfg.log_path);
  Status result;
  for (;;) {
    int sig = 0;
    sigwait(&stop, &sig);
    result = km->Unmount();
    if (result.code() != EBUSY) break;
    std::fprintf(stderr, "vdkit mount: %s; still mounted\n", result.message().c_str());
  }
  if (result.ok() && cfg.writable) result = plan.disk->flush();
  unlink(state_file_for(mp).c_str());
  return result;
}

// Does the work of a mount; returns when the FUSE session ends.
Status serve(const MountConfig& cfg, const std::string& mp, Notifier& notify) {
  if (cfg.kernel) {
    // Blocked before the device stack makes any thread, so only serve_kernel's sigwait takes them.
    sigset_t stop = stop_signals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  }
  VDKIT_ASSIGN_OR_RETURN(Plan plan, make_plan(cfg));
  std::string fsname = "vdkit:" + fs::path(cfg.source).filename().string();
  MountState state;
  state.pid = getpid();
  state.mountpoint = mp;

  Status result;
  if (cfg.kernel) return serve_kernel(cfg, plan, mp, state, notify);
  if (cfg.raw) {
    RawFuseContext ctx;
    ctx.writable = cfg.writable;
    ctx.timeout = 3600;
    clock_gettime(CLOCK_REALTIME, &ctx.mounted_at);
    ctx.entries.push_back({"disk", plan.disk});
    for (const auto& p : plan.partitions)
      ctx.entries.push_back(
          {"p" + std::to_string(p.number), std::shared_ptr<BlockDevice>(make_partition_view(plan.disk, p.offset, p.length))});
    for (const auto& [name, dev] : plan.lvs) ctx.entries.push_back({name, dev});
    Session session;
    VDKIT_RETURN_IF_ERROR(session.Mount(raw_fuse_ops(), &ctx, mp, fsname, cfg.writable, cfg.debug));
    VDKIT_RETURN_IF_ERROR(write_state(state));
    notify.Send(Status::Ok());
    if (!cfg.foreground) detach_stdio(cfg.log_path);
    session.Loop();
    result = ctx.flush_status;
  } else if (fs_type_of(*plan.fs_device) == guestfs::kFsXfs ||
             fs_type_of(*plan.fs_device) == guestfs::kFsBtrfs) {
    TreeFuseContext ctx;
    if (fs_type_of(*plan.fs_device) == guestfs::kFsXfs) {
      auto tree = guestfs::xfs::XfsTree::Open(plan.fs_device, plan.what);
      if (!tree.ok()) return tree.status().Context("opening the XFS file system on " + plan.what);
      for (const auto& w : (*tree)->warnings()) std::fprintf(stderr, "vdkit mount: warning: %s\n", w.c_str());
      const auto& sb = (*tree)->superblock();
      ctx.tree = *tree;
      ctx.statfs = {sb.block_size, sb.dblocks, std::min(sb.fdblocks, sb.dblocks), sb.icount,
                    std::min(sb.ifree, sb.icount), 255};
    } else {
      auto tree = guestfs::btrfs::BtrfsTree::open(plan.fs_device, plan.what, cfg.subvol);
      if (!tree.ok()) return tree.status().Context("opening the Btrfs on " + plan.what);
      for (const auto& w : (*tree)->warnings()) std::fprintf(stderr, "vdkit mount: warning: %s\n", w.c_str());
      const auto& sb = (*tree)->volume().super();
      ctx.tree = *tree;
      uint64_t blocks = sb.total_bytes / sb.sectorsize, used = sb.bytes_used / sb.sectorsize;
      ctx.statfs = {sb.sectorsize, blocks, blocks > used ? blocks - used : 0, 0, 0, 255};
    }
    Session session;
    VDKIT_RETURN_IF_ERROR(session.Mount(tree_fuse_ops(), &ctx, mp, fsname, false, cfg.debug));
    VDKIT_RETURN_IF_ERROR(write_state(state));
    notify.Send(Status::Ok());
    if (!cfg.foreground) detach_stdio(cfg.log_path);
    session.Loop();
  } else {
    auto vol = Ext2Volume::Open(plan.fs_device, cfg.writable);
    if (!vol.ok()) return vol.status().Context("opening the ext2/3/4 file system on " + plan.what);
    Ext2FuseContext ctx;
    ctx.volume = vol->get();
    ctx.writable = cfg.writable;
    ctx.timeout = cfg.writable ? 10 : 3600;
    {
      Session session;
      VDKIT_RETURN_IF_ERROR(session.Mount(ext2_fuse_ops(), &ctx, mp, fsname, cfg.writable, cfg.debug));
      VDKIT_RETURN_IF_ERROR(write_state(state));
      notify.Send(Status::Ok());
      if (!cfg.foreground) detach_stdio(cfg.log_path);
      session.Loop();
    }  // destroying the session runs destroy(): the volume is closed and flushed
    result = ctx.close_status;
    Status close = (*vol)->Close();  // no-op when destroy() already closed it
    if (result.ok()) result = close;
  }
  if (result.ok() && cfg.writable)
    for (const auto& d : plan.disks)
      if (result.ok()) result = d.dev->flush();
  unlink(state_file_for(mp).c_str());
  return result;
}

}  // namespace

Status run_mount(const MountConfig& cfg_in) {
  MountConfig cfg = cfg_in;
  if (cfg.debug) cfg.foreground = true;
  if (cfg.kernel && geteuid() != 0)
    return Status::Error(EPERM, "--kernel needs root: it sets up a loop device and a kernel mount");
  std::error_code ec;
  std::string mp = fs::canonical(cfg.mountpoint, ec).string();
  if (ec) return Status::FromErrno(ec.value(), "mount point '" + cfg.mountpoint + "'");
  if (!fs::is_directory(mp)) return Status::Error(ENOTDIR, "mount point '" + cfg.mountpoint + "' is not a folder");
  // Paths the daemon opens later must not depend on the folder it runs in.
  cfg.source = fs::absolute(cfg.source).string();
  if (!cfg.overlay_path.empty()) cfg.overlay_path = fs::absolute(cfg.overlay_path).string();
  if (!cfg.log_path.empty()) cfg.log_path = fs::absolute(cfg.log_path).string();

  if (cfg.foreground) {
    Notifier none(-1);
    return serve(cfg, mp, none);
  }
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    close(pipefd[0]);
    setsid();
    signal(SIGPIPE, SIG_IGN);
    int code = 0;
    {
      Notifier notify(pipefd[1]);
      Status st = serve(cfg, mp, notify);
      if (!st.ok()) {
        // Before the mount was ready the parent prints the error; after, only the log sees it.
        if (!notify.Send(st)) std::fprintf(stderr, "vdkit mount: %s\n", st.message().c_str());
        code = 1;
      }
    }
    _exit(code);
  }
  close(pipefd[1]);
  std::string msg;
  char buf[4096];
  for (;;) {
    ssize_t n = read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  close(pipefd[0]);
  if (msg == "OK") return Status::Ok();
  waitpid(pid, nullptr, WNOHANG);
  if (msg.rfind("ERR ", 0) == 0) {
    std::istringstream in(msg.substr(4));
    int code = EIO;
    in >> code;
    std::string rest;
    std::getline(in, rest);
    if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
    return Status::Error(code, rest);
  }
  return Status::IoError("the mount daemon exited before the mount was ready");
}

Status run_umount(const std::string& mountpoint) {
  std::string mp = mountpoint_key_path(mountpoint);
  auto state = read_state(mp);
  if (state && !state->kernel_fuse_dir.empty()) {
    // The kernel mount first (EBUSY reaches the user), then the daemon detaches the loop device and its raw view.
    Status st = guestfs::unmount_kernel_mount_point(mp);
    if (!st.ok() && st.code() != EINVAL)
      return Status::Error(st.code(), "cannot unmount '" + mp + "': " + st.message() +
                                          (st.code() == EBUSY ? " (is something still using it?)" : ""));
    if (state->pid > 0) kill(state->pid, SIGTERM);
  } else if (run_program({"fusermount3", "-u", "-q", mp}) != 0) {
    if (geteuid() != 0 || umount2(mp.c_str(), 0) != 0)
      return Status::Error(EBUSY, "cannot unmount '" + mp + "' (not a vdkit mount, or still in use)");
  }
  if (!state || state->pid <= 0) return Status::Ok();
  // Wait for the daemon to flush and exit, so the image is complete when we return.
  constexpr auto kFlushWait = std::chrono::minutes(10);
  auto deadline = std::chrono::steady_clock::now() + kFlushWait;
  while (kill(state->pid, 0) == 0) {
    // A zombie (our own child in tests) has finished.
    std::ifstream st("/proc/" + std::to_string(state->pid) + "/stat");
    std::string line;
    std::getline(st, line);
    auto rp = line.rfind(')');
    if (rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z') break;
    if (std::chrono::steady_clock::now() > deadline)
      return Status::Error(ETIMEDOUT, "the mount daemon (pid " + std::to_string(state->pid) +
                                          ") is still flushing after 10 minutes");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  unlink(state_file_for(mp).c_str());
  return Status::Ok();
}

}  // namespace vdkit
