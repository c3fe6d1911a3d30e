// Converting into a folder: XVA disks streamed front to back into NAME-diskN targets, or one disk named by its source.
#include "blockcore/convert/convert_folder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "blockcore/convert/convert_job.h"
#include "blockcore/convert/target_names.h"
#include "blockcore/convert/temp_target.h"
#include "blockcore/sources/nbd_source.h"
#include "blockcore/xva/xva.h"

namespace vdkit {

namespace {

// A VM name as the stem of a file name: path separators and control characters become '_'.
std::string file_stem(const std::string& name) {
  std::string s;
  for (char c : name) s += (c == '/' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  if (s.empty() || s == "." || s == "..") s = "vm";
  return s;
}

std::string join(const std::string& folder, const std::string& name) {
  return (std::filesystem::path(folder) / name).string();
}

Result<std::vector<FolderTarget>> convert_xva(int fd, bool seekable, const std::string& name,
                                              const std::string& folder, const ConvertOptions& opts) {
  VDKIT_ASSIGN_OR_RETURN(auto bytes, xva::open_byte_source(fd, name, seekable, opts.cancel));
  VDKIT_ASSIGN_OR_RETURN(auto reader, xva::XvaStreamReader::open(std::move(bytes), name));
  const xva::XvaManifest& m = reader->manifest();
  std::vector<NamedSource> named;
  for (const auto& d : m.disks) named.push_back({d.ref, false});
  VDKIT_ASSIGN_OR_RETURN(auto names, target_names(named, file_stem(m.vm_name),
                                                  opts.format == TargetFormat::kQcow2 ? "qcow2" : "raw"));
  const size_t n = m.disks.size();
  std::vector<TempTarget> tmps(n);
  for (size_t i = 0; i < n; ++i) VDKIT_RETURN_IF_ERROR(tmps[i].create(join(folder, names[i]), opts.overwrite));
  std::vector<FolderTarget> out(n);
  std::vector<bool> done(n, false);
  auto run_disk = [&](size_t i) -> Status {
    if (done[i])
      return Status::Corrupt(name + ": chunks of disk " + m.disks[i].ref +
                             " come again after another disk's; an XVA is read front to back, so each disk's chunks "
                             "must be together");
    done[i] = true;
    VDKIT_ASSIGN_OR_RETURN(auto sink, make_sink(tmps[i].fd(), tmps[i].tmp(), true, opts));
    auto stream = xva::disk_stream(*reader, i);
    auto stats = convert_stream(*stream, *sink, opts);
    // No context here: the reader looks one chunk ahead, so the message names the chunk and its disk itself.
    if (!stats.ok()) return stats.status();
    out[i].stats = *stats;
    return Status::Ok();
  };
  for (;;) {
    xva::XvaStreamReader::Chunk* c = nullptr;
    VDKIT_ASSIGN_OR_RETURN(bool more, reader->next(c, true));
    if (!more) break;
    VDKIT_RETURN_IF_ERROR(run_disk(c->disk));
    if (opts.cancel && opts.cancel->load()) return Status::Error(ECANCELED, "interrupted");
  }
  // Disks with no chunk at all are all zeros.
  for (size_t i = 0; i < n; ++i)
    if (!done[i]) VDKIT_RETURN_IF_ERROR(run_disk(i));
  if (opts.cancel && opts.cancel->load()) return Status::Error(ECANCELED, "interrupted");
  for (size_t i = 0; i < n; ++i) {
    struct stat st;
    if (::fstat(tmps[i].fd(), &st) == 0) out[i].stats.allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    out[i].path = tmps[i].target();
  }
  for (auto& t : tmps) VDKIT_RETURN_IF_ERROR(t.commit());
  return out;
}

}  // namespace

bool is_folder_target(const std::string& target) {
  if (!target.empty() && target.back() == '/') return true;
  struct stat st;
  return ::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<FolderTarget>> convert_to_folder(const std::string& source, const std::string& folder,
                                                    const ConvertOptions& opts) {
  struct stat st;
  if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status::Error(ENOTDIR, "target folder '" + folder + "' does not exist");
  if (source == "-") {
    if (opts.prepare_source) return Status::Invalid("a stream on standard input cannot be prepared (--fixup)");
    return convert_xva(STDIN_FILENO, false, "standard input", folder, opts);
  }
  if (!is_nbd_uri(source)) {
    VDKIT_ASSIGN_OR_RETURN(auto file, File::Open(source));
    VDKIT_ASSIGN_OR_RETURN(ProbedFormat f, probe_format(*file));
    if (f == ProbedFormat::kXva && opts.open.format.empty()) {
      if (opts.prepare_source)
        return Status::Invalid("--fixup with an XVA source: convert its disks first, then fix the system disk");
      int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Status::FromErrno(errno, "opening '" + source + "'");
      auto r = convert_xva(fd, true, "'" + source + "'", folder, opts);
      ::close(fd);
      return r;
    }
  }
  VDKIT_ASSIGN_OR_RETURN(auto names, target_names({{source, source_has_file_name(source)}}, "nbd",
                                                  opts.format == TargetFormat::kQcow2 ? "qcow2" : "raw"));
  FolderTarget t;
  t.path = join(folder, names[0]);
  VDKIT_ASSIGN_OR_RETURN(t.stats, convert_path(source, t.path, opts));
  return std::vector<FolderTarget>{t};
}

}  // namespace vdkit
