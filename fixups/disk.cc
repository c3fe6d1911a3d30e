// Guest disk: partitions and file-system superblocks (ext2/3/4, xfs, swap), device-name mapping, and the mounted tree.
#include "fixups/disk.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "blockcore/base/checked.h"
#include "blockcore/layers/partition.h"
#include "guestfs/ext2/ext2_guest_fs.h"

namespace vdkit::fixups {
namespace {

// Bytes read from the start of each file system to find its superblock
// (swap headers sit at the end of the first page, up to 64 KiB pages).
constexpr size_t kProbeBytes = 64 * 1024;

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

std::string uuid_string(const uint8_t* u) {
  static const char* hex = "0123456789abcdef";
  bool all_zero = true;
  for (int i = 0; i < 16; ++i) all_zero &= u[i] == 0;
  if (all_zero) return {};
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[u[i] >> 4];
    s += hex[u[i] & 15];
  }
  return s;
}

// A NUL-padded label field, cut at the first NUL and kept only if printable.
std::string label_string(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && p[i]; ++i) {
    if (p[i] < 0x20 || p[i] == 0x7f) return {};
    s += static_cast<char>(p[i]);
  }
  return s;
}

void probe_superblock(const std::vector<uint8_t>& b, FsInfo& fs) {
  constexpr size_t kExt = 1024;
  if (b.size() >= kExt + 0x100 && le16(&b[kExt + 0x38]) == 0xEF53) {
    uint32_t compat = le32(&b[kExt + 0x5C]), incompat = le32(&b[kExt + 0x60]);
    // As blkid: extents, 64bit or flex_bg make ext4; a journal makes ext3.
    if (incompat & (0x40 | 0x80 | 0x200))
      fs.type = "ext4";
    else if (compat & 0x4)
      fs.type = "ext3";
    else
      fs.type = "ext2";
    fs.uuid = uuid_string(&b[kExt + 0x68]);
    fs.label = label_string(&b[kExt + 0x78], 16);
    return;
  }
  if (b.size() >= 512 && std::memcmp(b.data(), "XFSB", 4) == 0) {
    fs.type = "xfs";
    fs.uuid = uuid_string(&b[32]);
    fs.label = label_string(&b[108], 12);
    return;
  }
  for (size_t page : {4096u, 8192u, 16384u, 65536u}) {
    if (b.size() >= page && std::memcmp(&b[page - 10], "SWAPSPACE2", 10) == 0) {
      fs.type = "swap";
      fs.uuid = uuid_string(&b[1024 + 12]);
      fs.label = label_string(&b[1024 + 28], 16);
      return;
    }
  }
}

Status probe_one(BlockDevice& dev, FsInfo& fs) {
  std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(kProbeBytes, fs.length)));
  if (buf.empty()) return Status::Ok();
  VDKIT_RETURN_IF_ERROR(
      dev.read(fs.offset, buf).Context("probing the file system at offset " + std::to_string(fs.offset)));
  probe_superblock(buf, fs);
  return Status::Ok();
}

bool ieq_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

Result<std::vector<FsInfo>> probe_filesystems(BlockDevice& dev) {
  VDKIT_ASSIGN_OR_RETURN(std::vector<Partition> parts, read_partition_table(dev));
  std::vector<FsInfo> out;
  if (parts.empty()) {
    FsInfo fs;
    fs.length = dev.size();
    VDKIT_RETURN_IF_ERROR(probe_one(dev, fs));
    out.push_back(fs);
    return out;
  }
  for (const auto& p : parts) {
    if (!range_within(p.offset, p.length, dev.size()))
      return Status::Corrupt("partition " + std::to_string(p.number) + " at offset " + std::to_string(p.offset) +
                             " runs past the end of the disk");
    FsInfo fs;
    fs.partition = p.number;
    fs.offset = p.offset;
    fs.length = p.length;
    // Extended partition containers hold no file system.
    if (p.scheme == "mbr" &&
        (p.type == "0x5" || p.type == "0x05" || p.type == "0xf" || p.type == "0x0f" || p.type == "0x85"))
      continue;
    VDKIT_RETURN_IF_ERROR(probe_one(dev, fs));
    out.push_back(fs);
  }
  return out;
}

std::optional<DeviceNaming> parse_device_naming(std::string_view s) {
  if (s == "uuid") return DeviceNaming::kUuid;
  if (s == "label") return DeviceNaming::kLabel;
  if (s == "vd") return DeviceNaming::kVd;
  return std::nullopt;
}

const FsInfo* DeviceMapper::find(std::string_view device) const {
  auto by = [&](auto pred) -> const FsInfo* {
    for (const auto& f : fs_)
      if (pred(f)) return &f;
    return nullptr;
  };
  std::string_view v = device;
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
  if (ieq_prefix(v, "UUID=")) {
    std::string u(v.substr(5));
    for (auto& c : u) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return by([&](const FsInfo& f) { return !f.uuid.empty() && f.uuid == u; });
  }
  if (ieq_prefix(v, "LABEL=")) return by([&](const FsInfo& f) { return !f.label.empty() && f.label == v.substr(6); });
  if (ieq_prefix(v, "/dev/disk/by-uuid/"))
    return by([&](const FsInfo& f) { return !f.uuid.empty() && f.uuid == v.substr(18); });
  if (ieq_prefix(v, "/dev/disk/by-label/"))
    return by([&](const FsInfo& f) { return !f.label.empty() && f.label == v.substr(19); });
  auto d = parse_device_name(v);
  if (!d || (disk_ != kAnyDisk && d->disk != disk_)) return nullptr;
  bool whole = fs_.size() == 1 && fs_[0].partition == 0;
  if (whole) return d->partition == 0 ? &fs_[0] : nullptr;
  if (d->partition == 0) return nullptr;
  return by([&](const FsInfo& f) { return f.partition == d->partition && !f.type.empty(); });
}

std::optional<std::string> DeviceMapper::map(std::string_view device) const {
  if (!parse_device_name(device)) return std::nullopt;  // UUID=, LABEL=, LVM names stay as they are
  const FsInfo* f = find(device);
  if (!f) return std::nullopt;
  std::string out;
  if (naming_ == DeviceNaming::kUuid && !f->uuid.empty())
    out = "UUID=" + f->uuid;
  else if (naming_ != DeviceNaming::kVd && !f->label.empty() && f->label.find_first_of(" \t") == std::string::npos)
    out = "LABEL=" + f->label;
  else if (naming_ == DeviceNaming::kLabel && !f->uuid.empty())
    out = "UUID=" + f->uuid;
  else
    out = "/dev/vda" + (f->partition ? std::to_string(f->partition) : std::string());
  if (out == device) return std::nullopt;
  return out;
}

GuestDisk::~GuestDisk() { (void)close(); }

Status GuestDisk::close() {
  Status first;
  fs.reset();
  for (auto& c : closers) {
    Status st = c();
    if (!st.ok() && first.ok()) first = st;
  }
  closers.clear();
  if (first.ok() && device && device->caps().can_flush) first = device->flush();
  return first;
}


Result<GuestFsPtr> open_ext_guest(std::shared_ptr<BlockDevice> dev, const FsInfo& fs, bool writable,
                                  std::function<Status()>* closer) {
  std::string what = fs.type + (fs.partition ? " on partition " + std::to_string(fs.partition) : " on the whole disk");
  std::shared_ptr<BlockDevice> view =
      fs.partition ? std::shared_ptr<BlockDevice>(make_partition_view(dev, fs.offset, fs.length)) : dev;
  auto vol = Ext2Volume::Open(view, writable);
  if (!vol.ok()) return vol.status().Context("opening " + what);
  std::shared_ptr<Ext2Volume> v(std::move(*vol));
  if (closer) *closer = [v] { return v->Close(); };
  return GuestFsPtr(new guestfs::Ext2GuestFs(v, what));
}

Result<std::unique_ptr<GuestDisk>> open_guest(std::shared_ptr<BlockDevice> dev, bool writable) {
  auto g = std::make_unique<GuestDisk>();
  g->device = dev;
  VDKIT_ASSIGN_OR_RETURN(g->filesystems, probe_filesystems(*dev));
  g->fs = std::make_unique<MountedGuestFs>();
  // The root: the first ext file system with an /etc/fstab.
  int root = -1;
  std::string fstab;
  Status last = Status::Error(ENOENT, "no ext2/3/4 file system on the disk holds /etc/fstab");
  for (size_t k = 0; k < g->filesystems.size() && root < 0; ++k) {
    const FsInfo& f = g->filesystems[k];
    if (f.type.rfind("ext", 0) != 0) continue;
    // Look for the root read-only: a file system that turns out not to be it is never written to (not even the
    // superblock's mount count), and a failure there cannot be mistaken for "not the root".
    std::function<Status()> closer;
    auto fs = open_ext_guest(dev, f, false, &closer);
    if (!fs.ok()) {
      last = fs.status();
      continue;
    }
    auto text = (*fs)->read_file("/etc/fstab", 1u << 20);
    if (closer) VDKIT_RETURN_IF_ERROR(closer());
    closer = nullptr;
    if (!text.ok()) continue;
    fs = open_ext_guest(dev, f, writable, &closer);
    if (!fs.ok()) return fs.status().Context("opening the root file system");
    root = static_cast<int>(k);
    fstab = *text;
    g->filesystems[k].mount_point = "/";
    g->fs->add("/", std::move(*fs));
    if (closer) g->closers.push_back(closer);
  }
  if (root < 0) return last;
  DeviceMapper any(g->filesystems, DeviceNaming::kUuid, -1);
  for (const auto& e : parse_fstab(fstab)) {
    const FsInfo* f = any.find(e.device);
    if (!f) continue;
    size_t idx = 0;
    while (idx < g->filesystems.size() &&
           !(g->filesystems[idx].offset == f->offset && g->filesystems[idx].partition == f->partition))
      ++idx;
    if (idx == g->filesystems.size()) continue;
    FsInfo& info = g->filesystems[idx];
    if (e.type == "swap" || e.mount_point == "swap") {
      info.mount_point = "swap";
      continue;
    }
    if (e.mount_point.empty() || e.mount_point[0] != '/' || e.mount_point == "/" || !info.mount_point.empty()) continue;
    info.mount_point = e.mount_point;
    if (info.type.rfind("ext", 0) != 0) continue;
    std::function<Status()> closer;
    auto fs = open_ext_guest(dev, info, writable, &closer);
    if (!fs.ok()) return fs.status().Context("mounting " + e.mount_point);
    g->fs->add(e.mount_point, std::move(*fs));
    if (closer) g->closers.push_back(closer);
  }
  return g;
}

}  // namespace vdkit::fixups
