// XVA: the front-to-back reader and per-disk streams, chunk checksums, and the random-access device over an index.
#include "blockcore/xva/xva.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"

namespace vdkit::xva {

namespace {

struct MemberName {
  size_t disk = 0;
  uint64_t number = 0;
  std::string suffix;  // "", "checksum" or "xxhash"
};

// "Ref:12/00000042[.checksum|.xxhash]" of a listed disk; false for any other member.
bool parse_member(const XvaManifest& m, const std::string& name, MemberName& out) {
  size_t slash = name.rfind('/');
  if (slash == std::string::npos) return false;
  std::string folder = name.substr(0, slash), base = name.substr(slash + 1);
  size_t dot = base.find('.');
  std::string digits = base.substr(0, dot);
  out.suffix = dot == std::string::npos ? "" : base.substr(dot + 1);
  if (digits.empty() || digits.size() > 12 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return false;
  if (!out.suffix.empty() && out.suffix != "checksum" && out.suffix != "xxhash") return false;
  for (size_t i = 0; i < m.disks.size(); ++i) {
    if (m.disks[i].ref == folder) {
      out.disk = i;
      out.number = std::stoull(digits);
      return true;
    }
  }
  return false;
}

std::string trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// Checks a chunk member's size and place on its disk.
Status check_chunk(const XvaManifest& m, const MemberName& mn, uint64_t size, const std::string& where) {
  const XvaDisk& d = m.disks[mn.disk];
  if (size > kChunkBytes)
    return Status::Corrupt(where + ": chunk member '" + d.ref + "/" + std::to_string(mn.number) + "' holds " +
                           std::to_string(size) + " bytes, more than a chunk (1 MiB)");
  auto off = checked_mul(mn.number, kChunkBytes);
  if (!off || *off >= d.size || !range_within(*off, size, d.size))
    return Status::Corrupt(where + ": chunk " + std::to_string(mn.number) + " of disk " + d.ref + " (" +
                           std::to_string(size) + " bytes) lies past the end of the disk (" + std::to_string(d.size) +
                           " bytes, virtual_size in ova.xml)");
  return Status::Ok();
}

}  // namespace

Status verify_chunk(const uint8_t* data, size_t len, const std::string& kind, const std::string& want_text,
                    const std::string& what) {
  std::string want = lower(trim(want_text)), have;
  if (kind == "checksum") {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha1(), nullptr) != 1) return Status::IoError("SHA-1 failed");
    for (unsigned i = 0; i < n; ++i) {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", md[i]);
      have += b;
    }
  } else {
    char b[17];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(XXH64(data, len, 0)));
    have = b;
    want.insert(0, want.size() < 16 ? 16 - want.size() : 0, '0');  // a writer may drop leading zeros
  }
  if (have != want)
    return Status::Corrupt(what + ": " + (kind == "checksum" ? "SHA-1" : "xxh64") + " of the chunk is " + have +
                           " but its ." + kind + " member says '" + trim(want_text) + "'");
  return Status::Ok();
}

Result<std::unique_ptr<XvaStreamReader>> XvaStreamReader::open(std::unique_ptr<ByteSource> src,
                                                               const std::string& name) {
  std::unique_ptr<XvaStreamReader> r(new XvaStreamReader(std::move(src), name));
  TarEntry e;
  VDKIT_ASSIGN_OR_RETURN(bool any, r->tar_.next(e));
  if (!any || e.name != "ova.xml")
    return Status::Corrupt(name + ": not an XVA: the first tar member is " + (any ? "'" + e.name + "'" : "missing") +
                           ", not ova.xml");
  if (e.size > kMaxOvaXmlBytes)
    return Status::Corrupt(name + ": ova.xml is " + std::to_string(e.size) + " bytes, more than the limit of " +
                           std::to_string(kMaxOvaXmlBytes) + " (kMaxOvaXmlBytes)");
  std::string xml(e.size, '\0');
  VDKIT_RETURN_IF_ERROR(r->tar_.read_data(reinterpret_cast<uint8_t*>(xml.data()), xml.size()));
  VDKIT_ASSIGN_OR_RETURN(r->manifest_, parse_ova_xml(xml, name));
  return r;
}

Result<bool> XvaStreamReader::next(Chunk*& out, bool peek) {
  if (!have_pending_) {
    if (ended_) return false;
    for (;;) {
      TarEntry e;
      VDKIT_ASSIGN_OR_RETURN(bool more, tar_.next(e));
      if (!more) {
        ended_ = true;
        return false;
      }
      MemberName mn;
      if (!parse_member(manifest_, e.name, mn)) continue;
      if (!mn.suffix.empty())
        return Status::Corrupt(name_ + ": checksum member '" + e.name + "' does not follow its chunk");
      VDKIT_RETURN_IF_ERROR(check_chunk(manifest_, mn, e.size, name_));
      pending_.disk = mn.disk;
      pending_.number = mn.number;
      pending_.data.resize(e.size);
      VDKIT_RETURN_IF_ERROR(tar_.read_data(pending_.data.data(), e.size));
      // Its checksum must come next: nothing unverified leaves this reader.
      TarEntry s;
      VDKIT_ASSIGN_OR_RETURN(bool have_sum, tar_.next(s));
      MemberName sn;
      if (!have_sum || !parse_member(manifest_, s.name, sn) || sn.suffix.empty() || sn.disk != mn.disk ||
          sn.number != mn.number)
        return Status::Corrupt(name_ + ": chunk '" + e.name + "' is not followed by its .checksum or .xxhash member" +
                               (have_sum ? " (the next member is '" + s.name + "')" : " (the archive ends)"));
      if (s.size > kMaxChecksumFileBytes)
        return Status::Corrupt(name_ + ": checksum member '" + s.name + "' is " + std::to_string(s.size) + " bytes");
      std::string sum(s.size, '\0');
      VDKIT_RETURN_IF_ERROR(tar_.read_data(reinterpret_cast<uint8_t*>(sum.data()), sum.size()));
      VDKIT_RETURN_IF_ERROR(verify_chunk(pending_.data.data(), pending_.data.size(), sn.suffix, sum,
                                         name_ + ": chunk '" + e.name + "'"));
      have_pending_ = true;
      break;
    }
  }
  out = &pending_;
  if (!peek) have_pending_ = false;
  return true;
}

namespace {

class XvaDiskStream final : public StreamSource {
 public:
  XvaDiskStream(XvaStreamReader& r, size_t disk) : r_(r), disk_(disk), size_(r.manifest().disks[disk].size) {}
  const char* kind() const override { return "XVA disk stream"; }
  uint64_t size() const override { return size_; }
  uint64_t stream_bytes() const override { return r_.bytes_read() - start_; }

  Result<bool> next(uint64_t window, StreamPiece& piece) override {
    if (window < kChunkBytes || window % kChunkBytes)
      return Status::Invalid("internal error: XVA chunks need windows of whole MiB");
    if (done_) return false;
    XvaStreamReader::Chunk* c = nullptr;
    VDKIT_ASSIGN_OR_RETURN(bool more, r_.next(c, true));
    if (!more || c->disk != disk_) {
      done_ = true;
      return false;
    }
    piece.offset = align_down(c->number * kChunkBytes, window);
    piece.length = std::min(window, size_ - piece.offset);
    piece.raw.assign(piece.length, 0);
    piece.grains.clear();
    while (more && c->disk == disk_ && c->number * kChunkBytes < piece.offset + piece.length) {
      if (have_last_ && c->number <= last_)
        return Status::Corrupt(r_.name() + ": chunk " + std::to_string(c->number) + " of disk " +
                               r_.manifest().disks[disk_].ref + " comes after chunk " + std::to_string(last_) +
                               "; an XVA is read front to back, so its chunks must be in order");
      have_last_ = true;
      last_ = c->number;
      std::memcpy(piece.raw.data() + (c->number * kChunkBytes - piece.offset), c->data.data(), c->data.size());
      VDKIT_RETURN_IF_ERROR(r_.next(c, false).status());
      VDKIT_ASSIGN_OR_RETURN(more, r_.next(c, true));
    }
    piece.stream_bytes = stream_bytes();
    return true;
  }

 private:
  XvaStreamReader& r_;
  size_t disk_;
  uint64_t size_;
  uint64_t start_ = r_.bytes_read();
  bool done_ = false;
  bool have_last_ = false;
  uint64_t last_ = 0;
};

struct IndexedChunk {
  uint64_t data_offset = 0;
  uint32_t length = 0;
  std::string kind, sum;
};

class XvaDevice final : public BlockDevice {
 public:
  uint64_t size() const override { return size_; }
  const ImageInfo& info() const override { return info_; }

  Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    uint64_t end = offset + buf.size();
    for (uint64_t pos = offset; pos < end;) {
      uint64_t n = pos / kChunkBytes, base = n * kChunkBytes;
      uint64_t t = std::min(end, base + kChunkBytes);
      uint8_t* dst = buf.data() + (pos - offset);
      uint32_t idx = slot_[n];
      if (idx == kAbsent) {
        std::memset(dst, 0, t - pos);
      } else {
        const IndexedChunk& c = chunks_[idx];
        if (!verified_[idx].load(std::memory_order_acquire)) VDKIT_RETURN_IF_ERROR(verify(idx, n));
        uint64_t in = pos - base;
        uint64_t have = in < c.length ? std::min<uint64_t>(t - pos, c.length - in) : 0;
        if (have) VDKIT_RETURN_IF_ERROR(file_->ReadExact(c.data_offset + in, dst, have));
        if (have < t - pos) std::memset(dst + have, 0, t - pos - have);
      }
      pos = t;
    }
    return Status::Ok();
  }

  Status extents(uint64_t offset, uint64_t length, std::vector<Extent>& out) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, length));
    uint64_t end = offset + length;
    for (uint64_t pos = offset; pos < end;) {
      uint64_t n = pos / kChunkBytes;
      uint64_t t = std::min(end, (n + 1) * kChunkBytes);
      append_extent(out, {pos, t - pos, slot_[n] == kAbsent ? ExtentType::kHole : ExtentType::kData});
      pos = t;
    }
    return Status::Ok();
  }

  static constexpr uint32_t kAbsent = UINT32_MAX;
  std::shared_ptr<File> file_;
  uint64_t size_ = 0;
  std::vector<uint32_t> slot_;  // chunk number -> index into chunks_
  std::vector<IndexedChunk> chunks_;
  std::unique_ptr<std::atomic<bool>[]> verified_;
  ImageInfo info_;
  std::string ref_;

 private:
  Status verify(uint32_t idx, uint64_t number) {
    const IndexedChunk& c = chunks_[idx];
    std::vector<uint8_t> data(c.length);
    VDKIT_RETURN_IF_ERROR(file_->ReadExact(c.data_offset, data.data(), data.size()));
    VDKIT_RETURN_IF_ERROR(verify_chunk(data.data(), data.size(), c.kind, c.sum,
                                       "'" + file_->path() + "': chunk " + std::to_string(number) + " of disk " + ref_));
    verified_[idx].store(true, std::memory_order_release);
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<StreamSource> disk_stream(XvaStreamReader& reader, size_t disk) {
  return std::make_unique<XvaDiskStream>(reader, disk);
}

bool is_compressed_xva(int fd) {
  uint8_t head[4];
  if (::pread(fd, head, sizeof head, 0) != 4 || detect_compression(head, 4) == Compression::kNone) return false;
  int dupfd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  if (dupfd < 0) return false;
  bool yes = false;
  if (auto src = open_byte_source(dupfd, "probe", false); src.ok()) {
    uint8_t h[512];
    auto got = (*src)->read(h, sizeof h);
    yes = got.ok() && *got == sizeof h && std::memcmp(h, "ova.xml", 8) == 0 && std::memcmp(h + 257, "ustar", 5) == 0;
  }
  ::close(dupfd);
  return yes;
}

namespace {

// A private descriptor at offset 0 for a scan of an uncompressed XVA file (the File's own is used with pread only).
struct ScanFd {
  int fd = -1;
  ~ScanFd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<std::unique_ptr<XvaStreamReader>> open_for_random_access(const std::string& path, ScanFd& scan) {
  scan.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (scan.fd < 0) return Status::FromErrno(errno, "opening '" + path + "'");
  VDKIT_ASSIGN_OR_RETURN(auto src, open_byte_source(scan.fd, "'" + path + "'", true));
  if (!src->positions_are_file_offsets())
    return Status::Unsupported("'" + path + "' is a " + src->compression() +
                               "-compressed XVA, which can only be read front to back: `vdkit convert " + path +
                               " OUTDIR/` converts its disks (or decompress it first for info, map, serve, mount, "
                               "inspect and fixup)");
  return XvaStreamReader::open(std::move(src), "'" + path + "'");
}

}  // namespace

Result<size_t> xva_disk_count(const std::string& path) {
  ScanFd scan;
  VDKIT_ASSIGN_OR_RETURN(auto reader, open_for_random_access(path, scan));
  return reader->manifest().disks.size();
}

Result<BlockDevicePtr> open_xva_disk(std::shared_ptr<File> file, size_t disk) {
  const std::string& path = file->path();
  ScanFd scan;
  VDKIT_ASSIGN_OR_RETURN(auto reader, open_for_random_access(path, scan));
  const XvaManifest& m = reader->manifest();
  if (disk >= m.disks.size())
    return Status::Invalid("'" + path + "' has no disk " + std::to_string(disk) + ": VM '" + m.vm_name + "' has " +
                           std::to_string(m.disks.size()) + " (disk 0 to " + std::to_string(m.disks.size() - 1) + ")");
  auto dev = std::make_unique<XvaDevice>();
  dev->file_ = file;
  const XvaDisk& d = m.disks[disk];
  dev->size_ = d.size;
  dev->ref_ = d.ref;
  dev->slot_.assign(div_round_up(d.size, kChunkBytes), XvaDevice::kAbsent);

  // The index: every chunk of this disk with its checksum member (read: they are small).
  TarReader& tar = reader->tar();
  TarEntry e;
  IndexedChunk* open_chunk = nullptr;
  uint64_t open_number = 0;
  for (;;) {
    VDKIT_ASSIGN_OR_RETURN(bool more, tar.next(e));
    if (!more) break;
    MemberName mn;
    if (!parse_member(m, e.name, mn) || mn.disk != disk) continue;
    if (mn.suffix.empty()) {
      if (open_chunk)
        return Status::Corrupt("'" + path + "': chunk " + std::to_string(open_number) + " of disk " + d.ref +
                               " has no .checksum or .xxhash member");
      VDKIT_RETURN_IF_ERROR(check_chunk(m, mn, e.size, "'" + path + "'"));
      if (dev->slot_[mn.number] != XvaDevice::kAbsent)
        return Status::Corrupt("'" + path + "': chunk " + std::to_string(mn.number) + " of disk " + d.ref +
                               " appears twice");
      dev->slot_[mn.number] = static_cast<uint32_t>(dev->chunks_.size());
      dev->chunks_.push_back(IndexedChunk{e.data_offset, static_cast<uint32_t>(e.size), "", ""});
      open_chunk = &dev->chunks_.back();
      open_number = mn.number;
      continue;
    }
    if (!open_chunk || mn.number != open_number || e.size > kMaxChecksumFileBytes)
      return Status::Corrupt("'" + path + "': checksum member '" + e.name + "' does not follow its chunk");
    open_chunk->kind = mn.suffix;
    open_chunk->sum.resize(e.size);
    VDKIT_RETURN_IF_ERROR(tar.read_data(reinterpret_cast<uint8_t*>(open_chunk->sum.data()), e.size));
    open_chunk = nullptr;
  }
  if (open_chunk)
    return Status::Corrupt("'" + path + "': chunk " + std::to_string(open_number) + " of disk " + d.ref +
                           " has no .checksum or .xxhash member");
  dev->verified_ = std::make_unique<std::atomic<bool>[]>(dev->chunks_.size());

  ImageInfo& info = dev->info_;
  info.filename = path;
  info.format = "xva";
  info.virtual_size = d.size;
  info.actual_size = file->AllocatedBytes();
  info.cluster_size = kChunkBytes;
  auto& sp = info.specific;
  sp.emplace_back("vm-name", m.vm_name);
  sp.emplace_back("disks", std::to_string(m.disks.size()));
  for (size_t i = 0; i < m.disks.size(); ++i) {
    const XvaDisk& x = m.disks[i];
    sp.emplace_back("disk " + std::to_string(i), x.ref + " '" + x.name + "', " + std::to_string(x.size) +
                                                     " bytes, device " + (x.userdevice.empty() ? "?" : x.userdevice));
  }
  sp.emplace_back("this-device", "disk " + std::to_string(disk) + " (--xva-disk N reads another; `vdkit convert " +
                                     std::filesystem::path(path).filename().string() +
                                     " OUTDIR/` writes every disk)");
  sp.emplace_back("chunks", std::to_string(dev->chunks_.size()) + " of " + std::to_string(dev->slot_.size()) +
                                " stored, each checked against its checksum when first read");
  return BlockDevicePtr(std::move(dev));
}

}  // namespace vdkit::xva
