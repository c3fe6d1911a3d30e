// Builds the segment vdkit appends to an initramfs: the guest's own module files for the drivers it lacks, the
// module index rebuilt for the old and new modules together, and what makes its flavour load them.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"
#include "fixups/initramfs/modules.h"
#include "fixups/initramfs/reader.h"

namespace vdkit::fixups {

enum class InitramfsFlavour {
  kUnknown,
  kInitramfsTools,  // Debian, Ubuntu: /conf/modules
  kDracut,          // dracut with /etc/cmdline.d (it writes lib/dracut/dracut-VERSION): rd.driver.pre=
  kDracutOld,       // RHEL 6's dracut 004, which reads only the kernel command line: rdloaddriver= on the boot entry
  kNash,            // RHEL 5's mkinitrd: a nash /init with insmod lines
};
const char* to_string(InitramfsFlavour f);

// What the image says it was made by.
InitramfsFlavour detect_flavour(const InitramfsContents& c);

// The guest side the builder reads from: the kernel's modules in the guest (/lib/modules/KVER, resolved inside
// the guest's own file system, never the host's).
struct GuestKernelModules {
  std::string kver;
  ModulesDep dep;
  // Reads /lib/modules/KVER/REL from the guest (REL is checked by safe_module_path first), bounded.
  std::function<Result<std::string>(const std::string& rel)> read;
};

// Runs depmod on {path relative to /lib/modules/KVER -> content}; returns the index files (depmod.h's run_depmod).
using DepmodFn = std::function<Result<std::map<std::string, std::string>>(
    const std::string& kver, const std::map<std::string, std::string>& files)>;

struct DriverSegment {
  InitramfsFlavour flavour = InitramfsFlavour::kUnknown;
  std::vector<std::string> drivers;     // the requested drivers the image lacked
  std::vector<ModuleFile> modules;      // what goes in, in load order
  std::vector<std::string> files;       // every entry of the segment, as archived
  std::string segment;                  // the newc archive; empty when nothing is missing
  std::string padding;                  // zero bytes that put the segment on a 4-byte boundary after the image
  // kDracutOld: drivers to load from the kernel command line (rdloaddriver=), since its image cannot say it.
  std::vector<std::string> cmdline_drivers;
};

// Plans the segment for `image` (the initramfs file's bytes) so that `drivers` (module names, "virtio_blk") are
// loaded before the root disk is waited for. Drivers the image already holds are left out; none missing gives an
// empty segment. An unknown flavour, an image whose end cannot be found (lz4, bzip2), or a module the guest lacks
// is an error naming it; nothing is changed then.
Result<DriverSegment> build_driver_segment(std::string_view image, const std::vector<std::string>& drivers,
                                           const GuestKernelModules& guest, const DepmodFn& depmod);

// Resolves an image path ("lib/modules/6.1.0") through the symbolic links of the image itself (a merged-/usr
// image's lib -> usr/lib), as the kernel will see the tree once unpacked. Names as in CpioEntry.
Result<std::string> resolve_image_path(const InitramfsContents& c, std::string_view path);

}  // namespace vdkit::fixups
