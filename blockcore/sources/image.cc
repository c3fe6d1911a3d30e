// open_image: format probing, chain bookkeeping (loops, depth) and the rules for names found inside images.
#include "blockcore/sources/image.h"

#include <cstring>
#include <filesystem>

#include "blockcore/xva/xva.h"

namespace vdkit {

namespace fs = std::filesystem;

const std::vector<std::string>& known_formats() {
  static const std::vector<std::string> formats = {"raw", "qcow2", "vmdk", "vhd", "vhdx", "xva"};
  return formats;
}

std::string known_formats_text() {
  std::string s;
  for (const auto& f : known_formats()) s += (s.empty() ? "" : ", ") + f;
  return s;
}

std::string dir_of(const std::string& path) {
  fs::path p(path);
  auto parent = p.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

namespace {

std::string canonical_or_absolute(const std::string& path) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return fs::absolute(path).lexically_normal().string();
  return c.string();
}

// "nbd://x", "http:...", "file:..." and the like: a word of URI-scheme
// characters followed by ':' before any '/'.
bool looks_like_protocol(const std::string& name) {
  auto colon = name.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; ++i) {
    char c = name[i];
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.' || c == '_')) return false;
  }
  return true;
}

bool path_is_within(const std::string& path, const std::string& dir) {
  fs::path p(path), d(dir);
  auto rel = p.lexically_relative(d);
  if (rel.empty()) return false;
  auto first = *rel.begin();
  return first != ".." && !rel.is_absolute();
}

Result<BlockDevicePtr> open_with_context(const std::string& path, const std::string& format, OpenContext ctx) {
  std::string canon = canonical_or_absolute(path);
  for (const auto& seen : ctx.chain) {
    if (seen == canon) {
      std::string loop;
      for (const auto& s : ctx.chain) loop += s + " -> ";
      return Status::Invalid("backing chain loops: " + loop + canon);
    }
  }
  if (ctx.chain.size() >= ctx.options.max_chain_depth)
    return Status::Invalid("backing chain is deeper than the limit of " +
                           std::to_string(ctx.options.max_chain_depth) + " images at '" + path + "'");
  ctx.chain.push_back(canon);

  File::Mode mode = (ctx.top && ctx.options.writable) ? File::Mode::kReadWrite : File::Mode::kReadOnly;
  VDKIT_ASSIGN_OR_RETURN(std::shared_ptr<File> file, File::Open(path, mode, ctx.options.engine));

  std::string fmt = format;
  if (fmt.empty()) {
    VDKIT_ASSIGN_OR_RETURN(ProbedFormat probed, probe_format(*file));
    switch (probed) {
      case ProbedFormat::kRaw: fmt = "raw"; break;
      case ProbedFormat::kQcow2: fmt = "qcow2"; break;
      case ProbedFormat::kVmdkSparse:
      case ProbedFormat::kVmdkDescriptor: fmt = "vmdk"; break;
      case ProbedFormat::kVhd: fmt = "vhd"; break;
      case ProbedFormat::kVhdx: fmt = "vhdx"; break;
      case ProbedFormat::kXva: fmt = "xva"; break;
      case ProbedFormat::kVmdkSeSparse:
        return Status::Invalid("'" + path + "' is a bare VMDK seSparse extent; open the descriptor that names it");
      case ProbedFormat::kVmdkCowd:
        return Status::Unsupported("'" + path + "' is a VMDK COWD (ESX 2.x) sparse extent, which vdkit does not read");
    }
  }
  if (ctx.top && ctx.options.xva_disk != 0 && fmt != "xva")
    return Status::Invalid("'" + path + "' is a " + fmt + " image, one disk: only an XVA export has disk " +
                           std::to_string(ctx.options.xva_disk) + " to choose");
  Result<BlockDevicePtr> dev = Status::Invalid("unknown format '" + fmt + "'");
  if (fmt == "raw") dev = open_raw(file, ctx);
  else if (fmt == "qcow2") dev = open_qcow2(file, ctx);
  else if (fmt == "vmdk") dev = open_vmdk(file, ctx);
  else if (fmt == "vhd" || fmt == "vpc") dev = open_vhd(file, ctx);
  else if (fmt == "vhdx") dev = open_vhdx(file, ctx);
  else if (fmt == "xva") dev = xva::open_xva_disk(file, ctx.top ? ctx.options.xva_disk : 0);
  else return Status::Invalid("unknown format '" + fmt + "' for '" + path + "' (known: " + known_formats_text() + ")");
  return dev;
}

}  // namespace

Result<ProbedFormat> probe_format(const File& file) {
  uint8_t buf[512] = {};
  VDKIT_ASSIGN_OR_RETURN(size_t n, file.ReadSome(0, buf, sizeof buf));
  if (n >= 4 && std::memcmp(buf, "QFI\xfb", 4) == 0) return ProbedFormat::kQcow2;
  if (n >= 4 && std::memcmp(buf, "KDMV", 4) == 0) return ProbedFormat::kVmdkSparse;
  if (n >= 4 && std::memcmp(buf, "COWD", 4) == 0) return ProbedFormat::kVmdkCowd;
  // VHD: dynamic and differencing disks start with a copy of the footer; a fixed disk has it only at the end.
  if (n >= 8 && std::memcmp(buf, "conectix", 8) == 0) return ProbedFormat::kVhd;
  if (n >= 8 && std::memcmp(buf, "vhdxfile", 8) == 0) return ProbedFormat::kVhdx;
  // XVA: a tar whose first member is ova.xml (ustar magic at 257).
  if (n >= 512 && std::memcmp(buf, "ova.xml", 8) == 0 && std::memcmp(buf + 257, "ustar", 5) == 0)
    return ProbedFormat::kXva;
  if (xva::is_compressed_xva(file.fd())) return ProbedFormat::kXva;
  // seSparse: little-endian 64-bit magic 0x00000000cafebabe.
  if (n >= 8 && buf[0] == 0xbe && buf[1] == 0xba && buf[2] == 0xfe && buf[3] == 0xca && buf[4] == 0 &&
      buf[5] == 0 && buf[6] == 0 && buf[7] == 0)
    return ProbedFormat::kVmdkSeSparse;
  // A text descriptor: "# Disk DescriptorFile" or a version=/createType= line
  // near the start, and no NUL bytes in what was read.
  std::string head(reinterpret_cast<const char*>(buf), n);
  if (head.find('\0') == std::string::npos || head.find("# Disk DescriptorFile") != std::string::npos) {
    if (head.find("# Disk DescriptorFile") != std::string::npos ||
        (head.find("createType") != std::string::npos && head.find("version") != std::string::npos))
      return ProbedFormat::kVmdkDescriptor;
  }
  VDKIT_ASSIGN_OR_RETURN(uint64_t size, file.Size());
  if (size >= 1024) {
    uint8_t tail[8];
    VDKIT_RETURN_IF_ERROR(file.ReadExact(size - 512, tail, sizeof tail));
    if (std::memcmp(tail, "conectix", 8) == 0) return ProbedFormat::kVhd;
  }
  return ProbedFormat::kRaw;
}

Result<std::string> resolve_reference(const OpenContext& ctx, const std::string& referrer_dir,
                                      const std::string& name, const std::string& what) {
  if (name.empty()) return Status::Invalid(what + " name is empty");
  if (name.find('\0') != std::string::npos) return Status::Invalid(what + " name contains a NUL byte");
  if (name.rfind("json:", 0) == 0)
    return Status::Error(EPERM, what + " '" + name + "' is a json: pseudo-protocol name; vdkit refuses those");
  if (looks_like_protocol(name))
    return Status::Error(EPERM, what + " '" + name +
                                    "' names a protocol, not a file; vdkit refuses protocol names inside images");
  fs::path p(name);
  std::string joined = p.is_absolute() ? name : (fs::path(referrer_dir) / p).string();
  std::string canon = canonical_or_absolute(joined);
  if (!ctx.options.allow_external_paths) {
    if (p.is_absolute())
      return Status::Error(EPERM, what + " '" + name +
                                      "' is an absolute path; pass --allow-external-paths to follow it");
    if (!path_is_within(canon, ctx.top_dir))
      return Status::Error(EPERM, what + " '" + name + "' leaves the folder of the image (" + ctx.top_dir +
                                      "); pass --allow-external-paths to follow it");
  }
  return joined;
}

Result<BlockDevicePtr> open_chained_image(const OpenContext& ctx, const std::string& resolved_path,
                                          const std::string& format, const std::string& what) {
  OpenContext next = ctx;
  next.top = false;
  auto dev = open_with_context(resolved_path, format, std::move(next));
  if (!dev.ok()) return dev.status().Context("opening " + what + " '" + resolved_path + "'");
  return dev;
}

Result<OpenedParent> open_first_parent(const OpenContext& ctx, const std::string& image_path,
                                       const std::vector<ParentName>& names, const std::string& format) {
  std::string tried;
  Status refusal;
  for (const auto& [name, field] : names) {
    auto path = resolve_reference(ctx, dir_of(image_path), name, "parent disk");
    if (!path.ok()) {
      if (refusal.ok()) refusal = path.status().Context(field);
      continue;
    }
    std::error_code ec;
    if (!fs::exists(*path, ec)) {
      tried += (tried.empty() ? "" : ", ") + ("'" + *path + "' (" + field + ")");
      continue;
    }
    VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr dev, open_chained_image(ctx, *path, format, "parent disk"));
    return OpenedParent{std::move(dev), name, *path};
  }
  if (!refusal.ok()) return refusal.Context("'" + image_path + "'");
  if (tried.empty()) return Status::Corrupt("'" + image_path + "': it names no parent disk");
  return Status::Error(ENOENT, "'" + image_path + "': the parent disk is not found; tried " + tried);
}

std::string posix_from_windows_path(std::string s) {
  for (char& c : s)
    if (c == '\\') c = '/';
  if (s.size() >= 2 && s[1] == ':' && isalpha(static_cast<unsigned char>(s[0]))) s = s.substr(2);
  return s;
}

Result<BlockDevicePtr> open_image(const std::string& path, const OpenOptions& options) {
  OpenContext ctx;
  ctx.options = options;
  ctx.top_dir = dir_of(canonical_or_absolute(path));
  ctx.top = true;
  return open_with_context(path, options.format, std::move(ctx));
}

Result<std::vector<BlockDevicePtr>> open_image_disks(const std::string& path, const OpenOptions& options) {
  OpenOptions o = options;
  o.xva_disk = 0;
  std::vector<BlockDevicePtr> disks;
  VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr first, open_image(path, o));
  const bool xva = first->info().format == "xva";
  disks.push_back(std::move(first));
  if (!xva) return disks;
  VDKIT_ASSIGN_OR_RETURN(size_t n, xva::xva_disk_count(path));
  for (o.xva_disk = 1; o.xva_disk < n; ++o.xva_disk) {
    VDKIT_ASSIGN_OR_RETURN(BlockDevicePtr d, open_image(path, o));
    disks.push_back(std::move(d));
  }
  return disks;
}

}  // namespace vdkit
