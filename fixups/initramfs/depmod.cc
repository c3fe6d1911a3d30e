// depmod -b STAGE KVER on a staging folder made for the one run, removed on every path out.
#include "fixups/initramfs/depmod.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixups/initramfs/modules.h"

extern char** environ;

namespace vdkit::fixups {
namespace {

namespace fs = std::filesystem;

// A temporary folder removed when this goes out of scope.
struct StageDir {
  std::string path;
  ~StageDir() {
    if (path.empty()) return;
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

bool index_input(const std::string& rel) {
  return rel == "modules.order" || rel == "modules.builtin" || rel == "modules.builtin.modinfo";
}

Status write_host_file(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  if (!f) return Status::Error(EIO, "depmod staging: cannot write " + p.string());
  return Status::Ok();
}

}  // namespace

std::string find_depmod() {
  std::string dirs = getenv("PATH") ? getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream s(dirs);
  std::string d;
  while (std::getline(s, d, ':')) {
    if (d.empty()) continue;
    std::string p = d + "/depmod";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

Result<std::map<std::string, std::string>> run_depmod(const std::string& kver,
                                                      const std::map<std::string, std::string>& files,
                                                      const std::string& depmod_arg) {
  std::string depmod = depmod_arg.empty() ? find_depmod() : depmod_arg;
  if (depmod.empty()) return Status::Error(ENOENT, "depmod (kmod) is not installed on the host");
  if (kver.empty() || kver.find('/') != std::string::npos || kver == "." || kver == "..")
    return Status::Error(EINVAL, "depmod: bad kernel version '" + kver + "'");
  StageDir stage;
  std::string tmpl = (fs::temp_directory_path() / "vdkit-depmod.XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return Status::FromErrno(errno, "depmod: creating a staging folder");
  stage.path = tmpl;
  fs::path base = fs::path(stage.path) / "lib" / "modules" / kver;
  std::error_code ec;
  fs::create_directories(base, ec);
  if (ec) return Status::Error(EIO, "depmod staging: " + ec.message());
  for (const auto& [rel, data] : files) {
    // Every name is guest input: only module paths that cannot leave the folder, and the three index inputs.
    if (!safe_module_path(rel) && !index_input(rel))
      return Status::Error(EINVAL, "depmod staging: refusing the path '" + rel.substr(0, 200) + "'");
    fs::path p = base / rel;
    fs::create_directories(p.parent_path(), ec);
    if (ec) return Status::Error(EIO, "depmod staging: " + ec.message());
    VDKIT_RETURN_IF_ERROR(write_host_file(p, data));
  }
  std::string log = stage.path + "/depmod.log";
  std::vector<std::string> args{depmod, "-b", stage.path, kver};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawn(&pid, depmod.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status::FromErrno(rc, "running " + depmod);
  int wst = 0;
  while (::waitpid(pid, &wst, 0) < 0)
    if (errno != EINTR) return Status::FromErrno(errno, "waiting for depmod");
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
    std::string msg = slurp(log);
    if (msg.size() > 400) msg = msg.substr(msg.size() - 400);
    return Status::Error(EIO, "depmod -b STAGE " + kver + " failed: " + msg);
  }
  std::map<std::string, std::string> out;
  for (const char* name : kModuleIndexFiles)
    if (fs::is_regular_file(base / name)) out[name] = slurp(base / name);
  if (!out.count("modules.dep")) return Status::Error(EIO, "depmod wrote no modules.dep");
  return out;
}

}  // namespace vdkit::fixups
