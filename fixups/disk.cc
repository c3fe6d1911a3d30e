// Guest disk: partitions and their file systems (guestfs/probe.h), device-name mapping, and the mounted tree.
#include "fixups/disk.h"

#include <algorithm>
#include <cctype>

#include "blockcore/base/checked.h"
#include "blockcore/layers/partition.h"
#include "fixups/btrfs_root.h"
#include "fixups/rules/fstab.h"
#include "fixups/rules/text.h"
#include "fixups/xfs_volume.h"
#include "guestfs/ext2/ext2_guest_fs.h"
#include "guestfs/probe.h"

namespace vdkit::fixups {
namespace {

Status probe_into(BlockDevice& dev, FsInfo& fs) {
  VDKIT_ASSIGN_OR_RETURN(guestfs::FsProbe p, guestfs::probe_fs(dev, fs.offset, fs.length));
  fs.type = std::move(p.type);
  fs.uuid = std::move(p.uuid);
  fs.label = std::move(p.label);
  return Status::Ok();
}

bool ieq_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Whether a file system mounted at mp is opened writable when the guest is: always, unless only the kernel can
// write it and nothing is to be written there.
bool kernel_writes(const OpenGuestOptions& how, const FsInfo& f, const std::string& mp) {
  if (!needs_kernel_to_write(f.type)) return true;
  return std::find(how.kernel_mounts.begin(), how.kernel_mounts.end(), mp) != how.kernel_mounts.end();
}

}  // namespace

Result<std::vector<FsInfo>> probe_filesystems(BlockDevice& dev) {
  VDKIT_ASSIGN_OR_RETURN(std::vector<Partition> parts, read_partition_table(dev));
  std::vector<FsInfo> out;
  if (parts.empty()) {
    FsInfo fs;
    fs.length = dev.size();
    VDKIT_RETURN_IF_ERROR(probe_into(dev, fs));
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
    VDKIT_RETURN_IF_ERROR(probe_into(dev, fs));
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
    // vfat and NTFS serials are upper case where blkid prints them, ext and xfs UUIDs lower case.
    std::string u = detail::lower(v.substr(5));
    return by([&](const FsInfo& f) { return !f.uuid.empty() && detail::lower(f.uuid) == u; });
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
  // udev links /dev/disk/by-uuid and by-label for file systems, swap and LUKS, not for LVM physical volumes.
  const bool linked = f->type != guestfs::kFsLvm2Member;
  std::string out;
  if (naming_ == DeviceNaming::kUuid && linked && !f->uuid.empty())
    out = "UUID=" + f->uuid;
  else if (naming_ != DeviceNaming::kVd && linked && !f->label.empty() &&
           f->label.find_first_of(" \t") == std::string::npos)
    out = "LABEL=" + f->label;
  else if (naming_ == DeviceNaming::kLabel && linked && !f->uuid.empty())
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


bool can_open_fs(std::string_view type) {
  return guestfs::is_ext(type) || type == guestfs::kFsXfs || type == guestfs::kFsBtrfs;
}

bool needs_kernel_to_write(std::string_view type) { return type == guestfs::kFsXfs || type == guestfs::kFsBtrfs; }

Result<GuestFsPtr> open_volume_fs(std::shared_ptr<BlockDevice> dev, const FsInfo& fs, bool writable,
                                  std::function<Status()>* closer, const OpenGuestOptions& how) {
  std::string what = fs.type + (fs.partition ? " on partition " + std::to_string(fs.partition) : " on the whole disk");
  if (!can_open_fs(fs.type)) return Status::Unsupported("vdkit cannot read " + what);
  std::shared_ptr<BlockDevice> view =
      fs.partition ? std::shared_ptr<BlockDevice>(make_partition_view(dev, fs.offset, fs.length)) : dev;
  if (fs.type == guestfs::kFsXfs) return open_xfs_guest_fs(view, fs, what, writable, how, closer);
  if (fs.type == guestfs::kFsBtrfs) return open_btrfs_guest_fs(view, fs, what, writable, how, closer);
  auto vol = Ext2Volume::Open(view, writable, how.force);
  if (!vol.ok()) return vol.status().Context("opening " + what);
  std::shared_ptr<Ext2Volume> v(std::move(*vol));
  if (closer) *closer = [v] { return v->Close(); };
  return GuestFsPtr(new guestfs::Ext2GuestFs(v, what));
}

Result<std::unique_ptr<GuestDisk>> open_guest(std::shared_ptr<BlockDevice> dev, bool writable,
                                              const OpenGuestOptions& how) {
  auto g = std::make_unique<GuestDisk>();
  g->device = dev;
  VDKIT_ASSIGN_OR_RETURN(g->filesystems, probe_filesystems(*dev));
  for (auto& f : g->filesystems)  // the state an XFS is in (version, log); which subvolume a Btrfs shows
    if (f.type == guestfs::kFsXfs || f.type == guestfs::kFsBtrfs) {
      auto view = f.partition ? std::shared_ptr<BlockDevice>(make_partition_view(dev, f.offset, f.length)) : dev;
      Status st = f.type == guestfs::kFsXfs ? describe_xfs(view, f) : describe_btrfs(view, f);
      if (!st.ok()) f.warnings.push_back(st.message());
    }
  g->fs = std::make_unique<MountedGuestFs>();
  // The root: the first ext file system with an /etc/fstab.
  int root = -1;
  std::string fstab;
  Status last = Status::Error(ENOENT, "no file system vdkit reads on the disk holds /etc/fstab");
  for (size_t k = 0; k < g->filesystems.size() && root < 0; ++k) {
    const FsInfo& f = g->filesystems[k];
    if (!can_open_fs(f.type)) continue;
    // Look for the root read-only: a file system that turns out not to be it is never written to (not even the
    // superblock's mount count), and a failure there cannot be mistaken for "not the root".
    std::function<Status()> closer;
    auto fs = open_volume_fs(dev, f, false, &closer);
    if (!fs.ok()) {
      last = fs.status();
      continue;
    }
    auto text = (*fs)->read_file("/etc/fstab", 1u << 20);
    if (closer) VDKIT_RETURN_IF_ERROR(closer());
    closer = nullptr;
    if (!text.ok()) continue;
    fs = open_volume_fs(dev, f, writable && kernel_writes(how, f, "/"), &closer, how);
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
    if (!can_open_fs(info.type)) continue;
    std::function<Status()> closer;
    auto fs = open_volume_fs(dev, info, writable && kernel_writes(how, info, e.mount_point), &closer, how);
    if (!fs.ok()) return fs.status().Context("mounting " + e.mount_point);
    g->fs->add(e.mount_point, std::move(*fs));
    if (closer) g->closers.push_back(closer);
  }
  return g;
}

}  // namespace vdkit::fixups
