// Target naming for several disks: after the source's file name, or NAME-diskN for sources without one.
#include "blockcore/convert/target_names.h"

#include <map>

namespace vdkit {

bool source_has_file_name(const std::string& source) {
  if (source.empty() || source == "-") return false;
  if (source.rfind("nbd:", 0) == 0 || source.rfind("nbd+", 0) == 0 || source.rfind("nbds", 0) == 0) return false;
  return source.back() != '/';
}

Result<std::vector<std::string>> target_names(const std::vector<NamedSource>& sources, const std::string& name,
                                              const std::string& ext) {
  std::vector<std::string> out;
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < sources.size(); ++i) {
    const NamedSource& s = sources[i];
    std::string t;
    if (s.has_file_name) {
      std::string base = s.source.substr(s.source.find_last_of('/') + 1);
      size_t dot = base.find_last_of('.');
      if (dot != std::string::npos && dot > 0) base.resize(dot);
      t = base + "." + ext;
    } else {
      if (name.empty()) return Status::Invalid("disk " + std::to_string(i) + " (" + s.source +
                                               ") has no file name to name its target after, and no guest name was given");
      t = name + "-disk" + std::to_string(i) + "." + ext;
    }
    auto [it, fresh] = seen.emplace(t, i);
    if (!fresh)
      return Status::Invalid("disks " + std::to_string(it->second) + " (" + sources[it->second].source + ") and " +
                             std::to_string(i) + " (" + s.source + ") would both be written to " + t);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace vdkit
