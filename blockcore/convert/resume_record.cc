// Resume records: JSON written atomically, read back with every field checked; source checksums with zlib's CRC-32.
#include "blockcore/convert/resume_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace vdkit {

namespace {

std::string hex32(uint32_t v) {
  char b[9];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

// mkdir -p for the record's folder.
Status make_dirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::FromErrno(errno, "creating the state folder '" + part + "'");
  }
  return Status::Ok();
}

std::string folder_of(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? "" : path.substr(0, s);
}

}  // namespace

Status write_resume_record(const std::string& path, const ResumeRecord& r) {
  nlohmann::json j;
  j["vdkit-resume"] = 1;
  j["source"] = r.source;
  j["target"] = r.target;
  j["target-format"] = r.target_format;
  j["cluster-size"] = r.cluster_size;
  j["compression"] = r.compression;
  j["fixup"] = r.fixup;
  j["source-size"] = r.source_size;
  j["target-size"] = r.target_size;
  j["header-bytes"] = r.header_bytes;
  j["header-crc32"] = r.header_crc32;
  j["flushed-offset"] = r.flushed;
  j["last-chunk-offset"] = r.last_chunk_offset;
  j["last-chunk-bytes"] = r.last_chunk_bytes;
  j["last-chunk-crc32"] = r.last_chunk_crc32;
  std::string text = j.dump(2) + "\n";
  VDKIT_RETURN_IF_ERROR(make_dirs(folder_of(path)));
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "writing the resume record '" + tmp + "'");
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "writing the resume record '" + path + "'");
  }
  return Status::Ok();
}

Result<ResumeRecord> read_resume_record(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "reading the resume record '" + path + "'");
  std::string text(kMaxResumeRecordBytes + 1, '\0');
  ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  if (n < 0) return Status::FromErrno(errno, "reading the resume record '" + path + "'");
  if (static_cast<uint64_t>(n) > kMaxResumeRecordBytes)
    return Status::Invalid("'" + path + "' is larger than a resume record can be");
  text.resize(static_cast<size_t>(n));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  // json::value() throws when the key holds another type, so the version is checked by hand.
  if (j.is_discarded() || !j.is_object() || !j.contains("vdkit-resume") || !j["vdkit-resume"].is_number_unsigned() ||
      j["vdkit-resume"].get<uint64_t>() != 1)
    return Status::Invalid("'" + path + "' is not a vdkit resume record");
  ResumeRecord r;
  std::string field;
  try {
    auto str = [&](const char* k, std::string& out) {
      field = k;
      out = j.at(k).get<std::string>();
    };
    auto num = [&](const char* k, uint64_t& out) {
      field = k;
      // Only whole non-negative numbers: get<uint64_t>() of a float out of range is undefined behaviour.
      const auto& v = j.at(k);
      if (!v.is_number_unsigned()) throw nlohmann::json::type_error::create(302, "not an unsigned integer", &v);
      out = v.get<uint64_t>();
    };
    str("source", r.source);
    str("target", r.target);
    str("target-format", r.target_format);
    num("cluster-size", r.cluster_size);
    str("compression", r.compression);
    field = "fixup";
    r.fixup = j.at("fixup").get<bool>();
    num("source-size", r.source_size);
    num("target-size", r.target_size);
    num("header-bytes", r.header_bytes);
    str("header-crc32", r.header_crc32);
    num("flushed-offset", r.flushed);
    num("last-chunk-offset", r.last_chunk_offset);
    num("last-chunk-bytes", r.last_chunk_bytes);
    str("last-chunk-crc32", r.last_chunk_crc32);
  } catch (const nlohmann::json::exception&) {
    return Status::Invalid("the resume record '" + path + "': field '" + field + "' is missing or of the wrong type");
  }
  if (r.flushed > r.source_size || r.header_bytes > r.source_size || r.last_chunk_offset > r.flushed ||
      r.last_chunk_bytes != r.flushed - r.last_chunk_offset)
    return Status::Invalid("the resume record '" + path + "' has offsets that do not fit the source size");
  return r;
}

Result<std::string> device_crc32(BlockDevice& dev, uint64_t offset, uint64_t length) {
  constexpr uint64_t kPiece = 1u << 20;
  std::vector<uint8_t> buf(std::min(kPiece, length));
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(buf.size(), length - done);
    VDKIT_RETURN_IF_ERROR(dev.read(offset + done, std::span<uint8_t>(buf.data(), n)));
    crc = crc32(crc, buf.data(), static_cast<uInt>(n));
    done += n;
  }
  return hex32(static_cast<uint32_t>(crc));
}

std::string default_resume_record_path(const std::string& state_dir, const std::string& target) {
  std::string key;
  for (char c : target) {
    if (key.size() >= 80) break;
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    key += keep ? c : '_';
  }
  uLong crc =
      crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(target.data()), static_cast<uInt>(target.size()));
  return state_dir + "/resume/" + key + "-" + hex32(static_cast<uint32_t>(crc)) + ".json";
}

}  // namespace vdkit
