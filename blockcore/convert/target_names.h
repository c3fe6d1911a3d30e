// The one naming rule for several targets in one folder (convert of a guest's disks, XVA, batch plans).
#pragma once

#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit {

// One source disk of a guest, for naming its target.
struct NamedSource {
  std::string source;  // a path, or an NBD URI / XVA disk reference (no file name of its own)
  bool has_file_name = true;
};

// The target file names (without folder) for sources converted into one folder with extension `ext` ("raw",
// "qcow2"): a source with a file name keeps its name with the extension replaced (web1-disk0.vmdk ->
// web1-disk0.qcow2; a name without extension gets one); one without is `NAME-diskN`, N its 0-based position
// among all the sources. Two sources that would write the same target are an error naming both.
Result<std::vector<std::string>> target_names(const std::vector<NamedSource>& sources, const std::string& name,
                                              const std::string& ext);

// Whether a source string has a file name to name a target after (paths yes; NBD URIs and "-" no).
bool source_has_file_name(const std::string& source);

}  // namespace vdkit
