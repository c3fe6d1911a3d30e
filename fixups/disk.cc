// Guest disk: partitions and their file systems (guestfs/probe.h), device-name mapping, and the mounted tree.
#include "fixups/disk.h"

#include <algorithm>
#include <cctype>

#include "blockcore/base/checked.h"
#include "blockcore/layers/partition.h"
#include "blockcore/layers/volumes.h"
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

std::string no_dashes(const std::string& s) {
  std::string o;
  for (char c : s)
    if (c != '-') o += c;
  return o;
}

}  // namespace

std::string place_of(const FsInfo& fs) {
  if (!fs.lv.empty()) return "LV " + fs.lv;
  std::string d = fs.disk ? " of disk " + std::to_string(fs.disk) : "";
  return fs.partition ? "partition " + std::to_string(fs.partition) + d : "the whole disk" + d;
}

Result<std::vector<FsInfo>> probe_guest_filesystems(const std::vector<std::shared_ptr<BlockDevice>>& disks,
                                                    std::vector<std::string>* notes) {
  std::vector<FsInfo> out;
  std::vector<vdkit::GuestDisk> named;
  for (size_t i = 0; i < disks.size(); ++i) {
    auto fs = probe_filesystems(*disks[i]);
    if (!fs.ok()) return fs.status().Context("disk " + std::to_string(i));
    for (auto& f : *fs) {
      f.disk = static_cast<int>(i);
      out.push_back(std::move(f));
    }
    named.push_back({"disk " + std::to_string(i), disks[i]});
  }
  // LVs, in VG then LV order. A scan that fails on I/O fails the guest; metadata it skips is a note.
  VDKIT_ASSIGN_OR_RETURN(auto scan, scan_volume_groups(named));
  if (notes) notes->insert(notes->end(), scan.warnings.begin(), scan.warnings.end());
  for (const auto& vg : scan.vgs)
    for (const auto& lv : vg.vg.lvs) {
      if (!lv.visible) continue;
      FsInfo f;
      f.lv = vg.vg.name + "/" + lv.name;
      f.lv_dm_uuid = "LVM-" + no_dashes(vg.vg.uuid) + no_dashes(lv.uuid);
      for (size_t p = 0; p < vg.pv_devices.size(); ++p)
        if (vg.pv_devices[p] && !lv.segments.empty() && !lv.segments[0].stripes.empty() &&
            lv.segments[0].stripes[0].pv == p)
          f.disk = vg.pv_devices[p]->disk_index;
      auto dev = lvm::open_logical_volume(vg, lv.name);
      if (!dev.ok()) {
        if (notes) notes->push_back(dev.status().message());
        out.push_back(std::move(f));
        continue;
      }
      f.volume = std::shared_ptr<BlockDevice>(std::move(*dev));
      f.length = f.volume->size();
      VDKIT_RETURN_IF_ERROR(probe_into(*f.volume, f).Context("LV " + f.lv));
      out.push_back(std::move(f));
    }
  return out;
}

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
  // LVM names: /dev/mapper/VG-LV, /dev/VG/LV, and the udev links Ubuntu's installer writes.
  if (ieq_prefix(v, "/dev/disk/by-id/dm-uuid-"))
    return by([&](const FsInfo& f) { return !f.lv_dm_uuid.empty() && f.lv_dm_uuid == v.substr(24); });
  std::string lv_path(v);
  if (ieq_prefix(v, "/dev/disk/by-id/dm-name-")) lv_path = "/dev/mapper/" + std::string(v.substr(24));
  auto d = parse_device_name(v);
  if (!d) {
    if (!ieq_prefix(lv_path, "/dev/")) return nullptr;
    auto n = parse_lv_name(lv_path);
    if (!n.ok()) return nullptr;
    const std::string want = n->vg + "/" + n->lv;
    return by([&](const FsInfo& f) { return !f.lv.empty() && f.lv == want; });
  }
  // Which of the given disks the name is on: disk_ is the letter of the first one (xvda, or Xen's xvde). With any
  // disk asked for, one disk takes every letter (what fstab names is on it); several are lettered from 'a', or
  // from 'e' when that is where the guest's names start.
  int ndisks = 0;
  for (const auto& f : fs_)
    if (f.lv.empty()) ndisks = std::max(ndisks, f.disk + 1);
  int rel = 0;
  if (disk_ == kAnyDisk) {
    rel = ndisks <= 1 ? 0 : (d->disk < ndisks ? d->disk : d->disk - 4);
  } else {
    if (disk_ < 0 || d->disk < disk_) return nullptr;
    rel = d->disk - disk_;
  }
  std::vector<const FsInfo*> on;
  for (const auto& f : fs_)
    if (f.lv.empty() && f.disk == rel) on.push_back(&f);
  if (on.empty()) return nullptr;
  bool whole = on.size() == 1 && on[0]->partition == 0;
  if (whole) return d->partition == 0 ? on[0] : nullptr;
  if (d->partition == 0) return nullptr;
  for (const FsInfo* f : on)
    if (f->partition == d->partition && !f->type.empty()) return f;
  return nullptr;
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
    out = "/dev/vd" + disk_letters(f->disk) + (f->partition ? std::to_string(f->partition) : std::string());
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
  for (const auto& d : disks)
    if (first.ok() && d && d->caps().can_flush) first = d->flush();
  if (disks.empty() && first.ok() && device && device->caps().can_flush) first = device->flush();
  return first;
}


bool can_open_fs(std::string_view type) {
  return guestfs::is_ext(type) || type == guestfs::kFsXfs || type == guestfs::kFsBtrfs;
}

bool needs_kernel_to_write(std::string_view type) { return type == guestfs::kFsXfs || type == guestfs::kFsBtrfs; }

Result<GuestFsPtr> open_volume_fs(std::shared_ptr<BlockDevice> dev, const FsInfo& fs, bool writable,
                                  std::function<Status()>* closer, const OpenGuestOptions& how) {
  std::string what = fs.type + " on " + place_of(fs);
  if (!can_open_fs(fs.type)) return Status::Unsupported("vdkit cannot read " + what);
  std::shared_ptr<BlockDevice> view =
      fs.volume      ? fs.volume
      : fs.partition ? std::shared_ptr<BlockDevice>(make_partition_view(dev, fs.offset, fs.length))
                     : dev;
  if (fs.type == guestfs::kFsXfs) return open_xfs_guest_fs(view, fs, what, writable, how, closer);
  if (fs.type == guestfs::kFsBtrfs) return open_btrfs_guest_fs(view, fs, what, writable, how, closer);
  auto vol = Ext2Volume::Open(view, writable, how.force);
  if (!vol.ok()) return vol.status().Context("opening " + what);
  std::shared_ptr<Ext2Volume> v(std::move(*vol));
  if (closer) *closer = [v] { return v->Close(); };
  return GuestFsPtr(new guestfs::Ext2GuestFs(v, what));
}

Result<std::unique_ptr<GuestDisk>> open_guest(std::vector<std::shared_ptr<BlockDevice>> disks, bool writable,
                                              const OpenGuestOptions& how) {
  if (disks.empty()) return Status::Invalid("no disk given");
  auto g = std::make_unique<GuestDisk>();
  g->device = disks[0];
  g->disks = disks;
  VDKIT_ASSIGN_OR_RETURN(g->filesystems, probe_guest_filesystems(disks, &g->notes));
  auto disk_of = [&](const FsInfo& f) { return disks[static_cast<size_t>(f.disk)]; };
  for (auto& f : g->filesystems)  // the state an XFS is in (version, log); which subvolume a Btrfs shows
    if (f.type == guestfs::kFsXfs || f.type == guestfs::kFsBtrfs) {
      auto view = f.volume      ? f.volume
                  : f.partition ? std::shared_ptr<BlockDevice>(make_partition_view(disk_of(f), f.offset, f.length))
                                : disk_of(f);
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
    auto fs = open_volume_fs(disk_of(f), f, false, &closer);
    if (!fs.ok()) {
      last = fs.status();
      continue;
    }
    auto text = (*fs)->read_file("/etc/fstab", 1u << 20);
    if (closer) VDKIT_RETURN_IF_ERROR(closer());
    closer = nullptr;
    if (!text.ok()) continue;
    fs = open_volume_fs(disk_of(f), f, writable && kernel_writes(how, f, "/"), &closer, how);
    if (!fs.ok()) return fs.status().Context("opening the root file system");
    root = static_cast<int>(k);
    fstab = *text;
    g->filesystems[k].mount_point = "/";
    g->fs->add("/", std::move(*fs));
    if (closer) g->closers.push_back(closer);
  }
  if (root < 0) {
    // What the LVM scan could not open may be why (root on an LV whose PV is on a disk not given).
    std::string why;
    for (const auto& n : g->notes) why += "; " + n;
    return Status::Error(last.code(), last.message() + why);
  }
  DeviceMapper any(g->filesystems, DeviceNaming::kUuid, -1);
  for (const auto& e : parse_fstab(fstab)) {
    const FsInfo* f = any.find(e.device);
    if (!f) continue;
    size_t idx = 0;
    while (idx < g->filesystems.size() && !g->filesystems[idx].same_place(*f)) ++idx;
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
    auto fs = open_volume_fs(disk_of(info), info, writable && kernel_writes(how, info, e.mount_point), &closer, how);
    if (!fs.ok()) return fs.status().Context("mounting " + e.mount_point);
    g->fs->add(e.mount_point, std::move(*fs));
    if (closer) g->closers.push_back(closer);
  }
  return g;
}

}  // namespace vdkit::fixups
