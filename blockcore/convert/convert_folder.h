// Converting into a folder: every disk of the source becomes one target there, named by target_names.h.
#pragma once

#include <string>
#include <vector>

#include "blockcore/convert/convert.h"

namespace vdkit {

struct FolderTarget {
  std::string path;  // the finished target
  ConvertStats stats;
};

// Converts `source` into the folder `folder` (which must exist). An XVA (a file, plain or gzip/zstd-compressed,
// or "-" for standard input) is read front to back once: each disk becomes NAME-diskN.EXT (NAME the VM's name in
// ova.xml, N the disk's place in the VM's device order), every chunk is checked against its checksum before it is
// written, and the targets are renamed into place only when all of them are complete (a failure leaves none).
// Any other source is one disk, named after its file (web1.vmdk -> web1.qcow2) or, for an NBD URI, NAME-disk0.
Result<std::vector<FolderTarget>> convert_to_folder(const std::string& source, const std::string& folder,
                                                    const ConvertOptions& opts);

// Whether a target names a folder: it ends with '/' or is an existing directory.
bool is_folder_target(const std::string& target);

}  // namespace vdkit
