// Opening images: probing the format by content, options, backing-chain context and the path-safety rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/io/io_engine.h"
#include "blockcore/base/status.h"

namespace vdkit {

// Named limits for chains and caches.
inline constexpr unsigned kDefaultMaxChainDepth = 32;
inline constexpr size_t kDefaultCacheBytes = 64u << 20;

struct OpenOptions {
  // Allow backing, extent and data-file names that are absolute or leave the
  // folder of the top image (--allow-external-paths).
  bool allow_external_paths = false;
  // How many images a backing/parent chain may hold, the top included.
  unsigned max_chain_depth = kDefaultMaxChainDepth;
  // Bytes of inflated grains/clusters kept for repeated small reads.
  size_t cache_bytes = kDefaultCacheBytes;
  // Force a format instead of probing (one of known_formats()); empty probes.
  std::string format;
  // Open the top image's files read-write (for --in-place); the chain below stays read-only.
  bool writable = false;
  // The I/O engine; null uses default_io_engine().
  IoEngine* engine = nullptr;
  // Which disk of an XVA export to read (0-based, in the VM's device order: --xva-disk). Another format refuses
  // any other value than 0.
  size_t xva_disk = 0;
};

// What a driver needs to open the images its image refers to.
struct OpenContext {
  OpenOptions options;
  std::string top_dir;              // canonical folder of the image the user named
  std::vector<std::string> chain;   // canonical paths opened so far, top first
  bool top = true;                  // this is the image the user named
};

// Opens an image read-only (unless options.writable), choosing the driver by content.
Result<BlockDevicePtr> open_image(const std::string& path, const OpenOptions& options = {});

// Every disk of an image: an XVA export's disks in the VM's device order (options.xva_disk is not used), or the
// one disk of any other image. For a guest given as one file that holds several disks (inspect, fixup).
Result<std::vector<BlockDevicePtr>> open_image_disks(const std::string& path, const OpenOptions& options = {});

// For drivers: opens an image named inside another image (a backing file or a
// VMDK parent) as the next link of ctx's chain. `format` may be empty (probe).
// Refuses loops and chains deeper than options.max_chain_depth.
Result<BlockDevicePtr> open_chained_image(const OpenContext& ctx, const std::string& resolved_path,
                                          const std::string& format, const std::string& what);

// For drivers: turns a file name written inside an image (backing file, extent,
// data file, parent hint) into a path to open. Relative names are resolved
// against referrer_dir. Refuses `json:` and protocol names ("nbd:", "http://")
// always, and absolute names or names leaving ctx.top_dir unless
// allow_external_paths. `what` names the field for the error ("backing file").
Result<std::string> resolve_reference(const OpenContext& ctx, const std::string& referrer_dir,
                                      const std::string& name, const std::string& what);

// For drivers whose images name their parent in several ways (VHD locators, VHDX locator keys): tries each name
// in order through resolve_reference. A refused name is remembered and the next tried; a name that does not exist
// is skipped; the first that exists is opened with `format` as the next link of the chain (its errors are final).
// With none found: the first refusal, else ENOENT listing what was tried. `field` names where a name came from.
struct ParentName {
  std::string name;
  std::string field;
};
struct OpenedParent {
  BlockDevicePtr device;
  std::string name;  // as written in the image
  std::string path;  // as opened
};
Result<OpenedParent> open_first_parent(const OpenContext& ctx, const std::string& image_path,
                                       const std::vector<ParentName>& names, const std::string& format);

// A Windows path from inside an image ("..\\dir\\p.vhd", "C:\\vms\\p.vhd") as a POSIX name: backslashes become
// slashes and a drive letter is dropped (the name stays absolute, so the external-path rule applies).
std::string posix_from_windows_path(std::string name);

// The formats probing can tell apart.
enum class ProbedFormat { kRaw, kQcow2, kVmdkSparse, kVmdkDescriptor, kVmdkSeSparse, kVmdkCowd, kVhd, kVhdx, kXva };
// Probes a file's first bytes.
Result<ProbedFormat> probe_format(const File& file);

// Driver entry points (one per format driver). `file` is the image file; ctx describes the chain.
Result<BlockDevicePtr> open_raw(std::shared_ptr<File> file, const OpenContext& ctx);
Result<BlockDevicePtr> open_qcow2(std::shared_ptr<File> file, const OpenContext& ctx);
Result<BlockDevicePtr> open_vmdk(std::shared_ptr<File> file, const OpenContext& ctx);
Result<BlockDevicePtr> open_vhd(std::shared_ptr<File> file, const OpenContext& ctx);
Result<BlockDevicePtr> open_vhdx(std::shared_ptr<File> file, const OpenContext& ctx);

// The formats OpenOptions::format takes (for option checks and messages), and them as "raw, qcow2, ...".
const std::vector<std::string>& known_formats();
std::string known_formats_text();

// Folder part of a path ("." for a bare name).
std::string dir_of(const std::string& path);

}  // namespace vdkit
