// Several source disks of one guest converted in one command, named by the one rule for several targets.
#include "cli/guest_disks.h"

#include <filesystem>

#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/target_names.h"

namespace vdkit::cli {

namespace fs = std::filesystem;

Result<std::vector<std::string>> convert_guest_disks(const std::vector<std::string>& sources, const std::string& folder,
                                                     const ConvertOptions& opts, const std::string& ext,
                                                     const fixups::FixupOptions* fixups, fixups::FixupResult* result,
                                                     std::vector<ConvertStats>* stats,
                                                     std::vector<guestfs::SparseMap>* sparse) {
  std::vector<NamedSource> named;
  for (const auto& s : sources) {
    if (s == "-" || !source_has_file_name(s))
      return Status::Invalid("'" + s + "': a guest's several disks are read from image files (not '-' or NBD)");
    named.push_back({s, true});
  }
  VDKIT_ASSIGN_OR_RETURN(auto names, target_names(named, "guest", ext));
  // Open every source before anything is created.
  std::vector<std::shared_ptr<BlockDevice>> disks;
  for (const auto& s : sources) {
    auto d = open_image(s, opts.open);
    if (!d.ok()) return d.status().Context("'" + s + "'");
    disks.emplace_back(std::move(*d));
  }
  std::vector<std::shared_ptr<BlockDevice>> prepared = disks;
  if (fixups) {
    VDKIT_ASSIGN_OR_RETURN(prepared, fixups::make_fixed_overlays(disks, *fixups, result));
  }
  if (sparse) {
    // After the fixups, so the map is the fixed guest's.
    std::vector<GuestDisk> guest;
    for (size_t i = 0; i < sources.size(); ++i) guest.push_back({sources[i], prepared[i]});
    VDKIT_ASSIGN_OR_RETURN(prepared, guestfs::make_sparsified_devices(guest, sparse));
  }
  std::error_code ec;
  bool made_folder = !fs::exists(folder, ec);
  if (made_folder && !fs::create_directories(folder, ec))
    return Status::FromErrno(ec.value(), "creating the target folder '" + folder + "'");
  std::vector<std::string> written;
  auto undo = [&] {
    for (const auto& w : written) fs::remove(w, ec);
    if (made_folder) fs::remove(folder, ec);
  };
  for (size_t i = 0; i < sources.size(); ++i) {
    std::string target = (fs::path(folder) / names[i]).string();
    ConvertOptions o = opts;
    // The disk was opened (and fixed) above; convert_path's own open only checks that the source still reads.
    std::shared_ptr<BlockDevice> dev = prepared[i];
    o.prepare_source = [dev](std::shared_ptr<BlockDevice>) -> Result<std::shared_ptr<BlockDevice>> { return dev; };
    auto st = convert_path(sources[i], target, o);
    if (!st.ok()) {
      undo();
      return st.status().Context("'" + sources[i] + "' -> '" + target + "'");
    }
    written.push_back(target);
    if (stats) stats->push_back(*st);
  }
  return written;
}

}  // namespace vdkit::cli
