// A guest kernel's modules.dep: the module files a set of drivers needs, in the order they must be loaded, with
// every path checked before anything is read or written by it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// modules.dep of a distribution kernel is about 1 MiB; anything over this is not one.
inline constexpr size_t kMaxModulesDepBytes = 16u << 20;
inline constexpr size_t kMaxModulesDepLines = 200000;
inline constexpr size_t kMaxModuleDeps = 256;  // dependencies of one module
inline constexpr size_t kMaxModulesAdded = 64;  // modules one closure may pull in
// One module file (the largest distribution modules are a few MiB).
inline constexpr size_t kMaxModuleFileBytes = 64u << 20;

// Module name of a path or a name as modprobe compares them: the file name without ".ko[.xz|.zst|.gz]", with '-'
// as '_' ("kernel/drivers/virtio/virtio-pci.ko.xz" -> "virtio_pci"). "" when the path is no module file.
std::string module_name(std::string_view path);

// Whether p is a path we accept from a guest's module list: relative, no "." / ".." / empty part, printable,
// no backslash, at most 4096 bytes, ending in .ko, .ko.xz, .ko.zst or .ko.gz.
bool safe_module_path(std::string_view p);

struct ModuleFile {
  std::string name;  // "virtio_blk"
  std::string path;  // relative to /lib/modules/KVER: "kernel/drivers/block/virtio_blk.ko.xz"
};

class ModulesDep {
 public:
  // Parses modules.dep of kernel `kver`. Paths may be relative (depmod since 2009) or absolute under
  // /lib/modules/KVER/ (RHEL 5's depmod). A line naming an unsafe path is an error naming the line.
  static Result<ModulesDep> parse(std::string_view text, std::string_view kver);

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }
  // The modules `names` need, each once, every module after the ones it depends on; modules in `skip` (already
  // loaded, or built in) are left out with their own dependencies still followed. Unknown names are errors.
  Result<std::vector<ModuleFile>> closure(const std::vector<std::string>& names,
                                          const std::vector<std::string>& skip = {}) const;
  size_t size() const { return modules_.size(); }

 private:
  struct Module {
    std::string path;
    std::vector<std::string> deps;  // names
  };
  std::map<std::string, Module> modules_;   // by name
  std::map<std::string, std::string> by_name_;
};

}  // namespace vdkit::fixups
