// Rebuilds a module index with the host's depmod (kmod) in a private staging folder: guest bytes are written only
// below it, under names checked by safe_module_path, and nothing of the guest is ever run.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::fixups {

// What depmod writes that an initramfs's module loader reads.
inline constexpr const char* kModuleIndexFiles[] = {
    "modules.dep",     "modules.dep.bin",     "modules.alias",       "modules.alias.bin",         "modules.softdep",
    "modules.symbols", "modules.symbols.bin", "modules.builtin.bin", "modules.builtin.alias.bin", "modules.devname"};

// files: path relative to /lib/modules/KVER -> content (module files and modules.builtin/.order/.builtin.modinfo).
// Returns the index files depmod wrote, by name. `depmod` is the program (found on PATH, /usr/sbin and /sbin when
// empty); ENOENT when it is not installed.
Result<std::map<std::string, std::string>> run_depmod(const std::string& kver,
                                                      const std::map<std::string, std::string>& files,
                                                      const std::string& depmod = "");

// The host's depmod, or "" when kmod is not installed.
std::string find_depmod();

}  // namespace vdkit::fixups
