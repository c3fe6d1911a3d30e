// `vdkit serve`: runs nbdkit with the vdkit plugin on a source image, prints the NBD URI, optionally runs a client.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command.h"

extern char** environ;

namespace vdkit::cli {
namespace {

namespace fs = std::filesystem;

struct ServeArgs {
  ImageOptions image;
  std::string path;
  std::string socket;
  int port = 0;
  std::string writable = "false";
  std::string overlay;
  int partition = 0;
  bool sparsify = false;
  std::string lv;
  std::vector<std::string> lv_disks;
  std::string cache;
  std::string run;
  unsigned threads = 0;
  bool verbose = false;
  std::string output = "human";
};

// The plugin beside this build of vdkit, an installed one, or VDKIT_NBD_PLUGIN.
std::string find_plugin() {
  if (const char* env = std::getenv("VDKIT_NBD_PLUGIN"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (const char* rel : {"../nbd-plugin/nbdkit-vdkit-plugin.so", "../lib/nbdkit/plugins/nbdkit-vdkit-plugin.so",
                            "../lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-vdkit-plugin.so"}) {
      fs::path p = (dir / rel).lexically_normal();
      if (fs::exists(p, ec)) return p.string();
    }
  }
  return "vdkit";  // nbdkit looks in its own plugin folder
}

volatile sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int sig) { g_stop_signal = sig; }

// Exit status of a waitpid() status the way a shell reports it.
int exit_status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return kExitFailure;
}

int run_serve(const ServeArgs& a) {
  const char* cmd = "serve";
  if (!a.socket.empty() && a.port) return fail(cmd, Status::Invalid("give --socket or --port, not both"));
  if (!a.overlay.empty() && a.writable != "false" && a.writable != "overlay")
    return fail(cmd, Status::Invalid("--overlay needs --writable=overlay (got --writable=" + a.writable + ")"));
  std::error_code ec;
  if (!fs::exists(a.path, ec)) return fail(cmd, Status::Error(ENOENT, "'" + a.path + "': No such file or directory"));

  std::string nbdkit = std::getenv("VDKIT_NBDKIT") ? std::getenv("VDKIT_NBDKIT") : "nbdkit";
  std::string plugin = find_plugin();

  // Without --socket, --port or --run, listen on a socket in a private folder removed at exit.
  std::string socket = a.socket;
  std::string tmpdir;
  if (socket.empty() && !a.port && a.run.empty()) {
    std::string tmpl = (fs::temp_directory_path(ec) / "vdkit-serve.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return fail(cmd, Status::FromErrno(errno, "making a folder for the socket"));
    tmpdir = tmpl;
    socket = tmpdir + "/nbd.sock";
  }
  std::string pidfile;
  if (a.run.empty()) {
    if (tmpdir.empty()) {
      std::string tmpl = (fs::temp_directory_path(ec) / "vdkit-serve.XXXXXX").string();
      if (!mkdtemp(tmpl.data())) return fail(cmd, Status::FromErrno(errno, "making a folder for the pid file"));
      tmpdir = tmpl;
    }
    pidfile = tmpdir + "/nbdkit.pid";
  }
  auto cleanup = [&] {
    if (!tmpdir.empty()) fs::remove_all(tmpdir, ec);
  };

  std::vector<std::string> argv = {nbdkit, "--foreground", "--exit-with-parent"};
  if (!socket.empty()) argv.insert(argv.end(), {"--unix", fs::absolute(socket).string()});
  if (a.port) argv.insert(argv.end(), {"--port", std::to_string(a.port)});
  if (!pidfile.empty()) argv.insert(argv.end(), {"--pidfile", pidfile});
  if (a.threads) argv.insert(argv.end(), {"--threads", std::to_string(a.threads)});
  if (a.verbose) argv.push_back("--verbose");
  if (!a.run.empty()) argv.insert(argv.end(), {"--run", a.run});
  argv.push_back(plugin);
  argv.push_back("file=" + fs::absolute(a.path).string());
  if (a.image.allow_external_paths) argv.push_back("allow-external-paths=true");
  if (!a.image.format.empty()) argv.push_back("format=" + a.image.format);
  if (!a.overlay.empty()) argv.push_back("overlay=" + fs::absolute(a.overlay).string());
  argv.push_back("writable=" + (a.overlay.empty() ? a.writable : std::string("overlay")));
  if (a.partition) argv.push_back("partition=" + std::to_string(a.partition));
  if (a.sparsify) argv.push_back("sparsify=true");
  if (!a.lv.empty()) argv.push_back("lv=" + a.lv);
  for (const auto& d : a.lv_disks) argv.push_back("disk=" + fs::absolute(d).string());
  if (!a.cache.empty()) argv.push_back("cache=" + a.cache);

  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);

  // Stop signals are caught (not ignored) before the spawn so nbdkit gets the default handlers back.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  pid_t pid;
  int rc = posix_spawnp(&pid, nbdkit.c_str(), nullptr, nullptr, cargv.data(), environ);
  if (rc != 0) {
    cleanup();
    return fail(cmd, Status::FromErrno(rc, "starting '" + nbdkit + "' (is nbdkit installed?)"));
  }

  int wstatus = 0;
  if (!a.run.empty()) {
    // nbdkit --run exits with the command's status once it ends.
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
      if (g_stop_signal) kill(pid, SIGTERM);
    }
    cleanup();
    return exit_status_of(wstatus);
  }

  // nbdkit writes the pid file once it accepts connections; until then it may still fail on a bad image.
  bool ready = false;
  while (!ready) {
    pid_t w = waitpid(pid, &wstatus, WNOHANG);
    if (w == pid) {
      cleanup();
      std::fprintf(stderr, "vdkit serve: nbdkit stopped before serving (status %d)\n", exit_status_of(wstatus));
      return kExitFailure;
    }
    if (g_stop_signal) {
      kill(pid, SIGTERM);
      break;
    }
    struct stat st;
    ready = ::stat(pidfile.c_str(), &st) == 0 && st.st_size > 0;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (ready) {
    std::string uri = !socket.empty() ? "nbd+unix:///?socket=" + fs::absolute(socket).string()
                                      : "nbd://localhost:" + std::to_string(a.port);
    if (a.output == "json") {
      nlohmann::json j;
      j["uri"] = uri;
      if (!socket.empty()) j["socket"] = fs::absolute(socket).string();
      if (a.port) j["port"] = a.port;
      j["pid"] = pid;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("%s\n", uri.c_str());
    }
    std::fflush(stdout);
  }
  for (;;) {
    pid_t w = waitpid(pid, &wstatus, 0);
    if (w == pid) break;
    if (w < 0 && errno == EINTR && g_stop_signal) kill(pid, SIGTERM);
  }
  cleanup();
  // Stopped by us on SIGINT/SIGTERM is the normal way out.
  if (g_stop_signal && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGTERM) return kExitOk;
  if (g_stop_signal && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return kExitOk;
  return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 ? kExitOk : kExitFailure;
}

CommandRegistrar reg(
    {"serve", "Export an image over NBD (nbdkit with the vdkit plugin)", [](CLI::App& sub) -> std::function<int()> {
       auto a = std::make_shared<ServeArgs>();
       sub.description(
           "Export SOURCE (raw, qcow2 or VMDK, with its backing chain) as a raw disk over NBD, by running\n"
           "nbdkit with the vdkit plugin. Clients (qemu-img, nbdcopy, nbdinfo, virt-v2v) get block status,\n"
           "multi-conn, flush and FUA. Without --socket or --port the server listens on a Unix socket in a\n"
           "private temporary folder.\n"
           "\n"
           "Without --run, vdkit prints the NBD URI on stdout once the server accepts connections\n"
           "(--output=json prints {\"uri\", \"socket\"|\"port\", \"pid\"}) and serves until SIGINT or SIGTERM.\n"
           "With --run, CMD runs under /bin/sh once the server is ready, with $uri (and $nbd, $unixsocket,\n"
           "$port) naming it as nbdkit --run sets them; the server stops when CMD ends and vdkit exits with\n"
           "CMD's status.\n"
           "\n"
           "Writes: --writable=false (default) serves read-only; --writable=overlay keeps writes in memory\n"
           "for the life of the server, or with --overlay=PATH in a new qcow2 file whose backing file is\n"
           "SOURCE; --writable=in-place writes SOURCE itself (raw or qcow2). SOURCE is never modified otherwise.\n"
           "\n"
           "The plugin is found beside this vdkit (../nbd-plugin/nbdkit-vdkit-plugin.so) or installed;\n"
           "VDKIT_NBD_PLUGIN=PATH overrides it, VDKIT_NBDKIT=PATH the nbdkit binary.\n"
           "Exit status: 0 served and stopped cleanly, 1 nbdkit refused the image or parameters (its message\n"
           "says why), 2 bad command line; with --run, CMD's status.");
       a->image.add_to(sub);
       auto* sock = sub.add_option("--socket", a->socket, "Listen on this Unix socket");
       sub.add_option("--port", a->port, "Listen on this TCP port")
           ->check(CLI::Range(1, 65535))
           ->excludes(sock);
       sub.add_option("--writable", a->writable, "Where writes go: false, overlay or in-place")
           ->check(CLI::IsMember({"false", "overlay", "in-place"}))
           ->default_val("false");
       sub.add_option("--overlay", a->overlay, "Keep writes in this new qcow2 file (implies --writable=overlay)");
       auto* part = sub.add_option("--partition", a->partition, "Export only partition N of the disk's MBR or GPT table")
                        ->check(CLI::Range(1, 128));
       sub.add_option("--lv", a->lv,
                      "Export only logical volume LV of LVM2 volume group VG (VG/LV), read from the PVs on the "
                      "disk without activating anything")
           ->excludes(part);
       sub.add_option("--disk", a->lv_disks,
                      "With --lv: another disk of the same guest that holds PVs of the VG (repeatable)");
       sub.add_flag("--sparsify", a->sparsify,
                    "Read what the guest does not use (free ext2/3/4, XFS and Btrfs blocks, swap after its header,\n"
                    "LVM extents no LV uses and the free blocks of the LVs on the disk, space outside the\n"
                    "partitions; with --lv, the LV's own free blocks; see `vdkit convert --sparsify`) as zeros and\n"
                    "report it as holes in block status, so nbdcopy, qemu-img and virt-v2v skip it. Read-only\n"
                    "exports only");
       sub.add_option("--cache", a->cache, "Memory for inflated grains, e.g. 256M (default 64M)");
       sub.add_option("--threads", a->threads, "nbdkit worker threads per connection")->check(CLI::Range(1, 1024));
       sub.add_option("--run", a->run, "Run CMD against the server, then stop it; exit with CMD's status");
       sub.add_flag("-v,--verbose", a->verbose, "nbdkit logs every request (debugging)");
       sub.add_option("--output", a->output, "How to print the URI")
           ->check(CLI::IsMember({"human", "json"}))
           ->default_val("human");
       sub.add_option("SOURCE", a->path, "The image to export")->required();
       return [a] { return run_serve(*a); };
     }});

}  // namespace
}  // namespace vdkit::cli
