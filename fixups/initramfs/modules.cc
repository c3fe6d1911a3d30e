// modules.dep parsing and dependency closure, bounded and path-checked: the module list is guest input.
#include "fixups/initramfs/modules.h"

#include <algorithm>
#include <functional>
#include <set>


namespace vdkit::fixups {
namespace {

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string module_name(std::string_view path) {
  std::string_view base = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  size_t ko = base.rfind(".ko");
  if (ko == std::string_view::npos || ko == 0) return {};
  std::string_view rest = base.substr(ko);
  if (rest != ".ko" && rest != ".ko.xz" && rest != ".ko.zst" && rest != ".ko.gz") return {};
  std::string n(base.substr(0, ko));
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

bool safe_module_path(std::string_view p) {
  if (p.empty() || p.size() > 4096 || p.front() == '/' || module_name(p).empty()) return false;
  for (char c : p)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f || c == '\\') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Result<ModulesDep> ModulesDep::parse(std::string_view text, std::string_view kver) {
  if (text.size() > kMaxModulesDepBytes)
    return Status::Error(EFBIG, "modules.dep: " + std::to_string(text.size()) + " bytes, more than the " +
                                    std::to_string(kMaxModulesDepBytes) + " a kernel's index has");
  ModulesDep out;
  const std::string abs = "/lib/modules/" + std::string(kver) + "/";
  auto rel = [&](std::string_view p) -> std::string_view {
    if (p.substr(0, abs.size()) == abs) p.remove_prefix(abs.size());
    return p;
  };
  size_t lineno = 0;
  // Line by line without a list of lines: the line limit must stop a file of newlines before it costs memory.
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim_ws(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (++lineno > kMaxModulesDepLines)
      return Status::Corrupt("modules.dep: more than " + std::to_string(kMaxModulesDepLines) + " lines");
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    auto bad = [&](const std::string& why) {
      return Status::Corrupt("modules.dep line " + std::to_string(lineno) + ": " + why);
    };
    if (colon == std::string_view::npos) return bad("no ':'");
    std::string_view path = rel(trim_ws(line.substr(0, colon)));
    if (!safe_module_path(path)) return bad("unsafe or unknown module path '" + std::string(path.substr(0, 200)) + "'");
    Module m{std::string(path), {}};
    std::string_view rest = line.substr(colon + 1);
    while (!rest.empty()) {
      rest = trim_ws(rest);
      size_t sp = rest.find_first_of(" \t");
      std::string_view dep = rel(rest.substr(0, sp));
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
      if (dep.empty()) continue;
      if (!safe_module_path(dep)) return bad("unsafe dependency path '" + std::string(dep.substr(0, 200)) + "'");
      if (m.deps.size() >= kMaxModuleDeps)
        return bad("more than " + std::to_string(kMaxModuleDeps) + " dependencies");
      m.deps.push_back(module_name(dep));
    }
    std::string name = module_name(path);
    out.by_name_[name] = m.path;
    out.modules_[name] = std::move(m);  // a later line of the same module wins, as in depmod's output
  }
  return out;
}

Result<std::vector<ModuleFile>> ModulesDep::closure(const std::vector<std::string>& names,
                                                    const std::vector<std::string>& skip) const {
  std::vector<ModuleFile> out;
  std::set<std::string> done, active;
  std::set<std::string> skipped(skip.begin(), skip.end());
  // Depth-first, dependencies first; a cycle (depmod refuses them, a hand-made file may not) is an error.
  std::function<Status(const std::string&, int)> visit = [&](const std::string& n, int depth) -> Status {
    if (done.count(n)) return Status::Ok();
    if (active.count(n) || depth > static_cast<int>(kMaxModulesAdded))
      return Status::Corrupt("modules.dep: dependency cycle through " + n);
    auto it = modules_.find(n);
    if (it == modules_.end()) return Status::Error(ENOENT, "modules.dep: no module " + n);
    active.insert(n);
    // depmod lists what a module needs last-loaded first; modprobe loads the list from its end.
    for (auto d = it->second.deps.rbegin(); d != it->second.deps.rend(); ++d) VDKIT_RETURN_IF_ERROR(visit(*d, depth + 1));
    active.erase(n);
    done.insert(n);
    if (!skipped.count(n)) {
      if (out.size() >= kMaxModulesAdded)
        return Status::Corrupt("modules.dep: more than " + std::to_string(kMaxModulesAdded) + " modules to add");
      out.push_back({n, it->second.path});
    }
    return Status::Ok();
  };
  for (const auto& n : names) VDKIT_RETURN_IF_ERROR(visit(n, 0));
  return out;
}

}  // namespace vdkit::fixups
