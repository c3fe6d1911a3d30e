// build_sparse_map: partitions, then each volume's own map by its probed type; swap headers and hibernation images.
#include "guestfs/sparse_map.h"

#include <algorithm>

#include "blockcore/base/units.h"
#include "blockcore/layers/masked.h"
#include "blockcore/layers/partition.h"
#include "guestfs/btrfs/btrfs_tree.h"
#include "guestfs/ext2/ext2_guest_fs.h"
#include "guestfs/lvm_free_space.h"
#include "guestfs/probe.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs {
namespace {

// Everything after the swap header page: the header (UUID, label, bad-page list) stays.
class SwapFreeSpace final : public FreeSpaceMap {
 public:
  SwapFreeSpace(uint64_t header, uint64_t size) : header_(header), size_(size) {}
  Status unused_ranges(ByteRanges& out) override {
    out.clear();
    if (size_ > header_) out.emplace_back(header_, size_ - header_);
    return Status::Ok();
  }

 private:
  uint64_t header_, size_;
};

// The bytes the prober looks at, from the volume's start.
Result<std::vector<uint8_t>> read_head(BlockDevice& view) {
  std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(view.size(), kProbeBytes)));
  VDKIT_RETURN_IF_ERROR(view.read(0, head));
  return head;
}

VolumeMap copied_whole(std::string reason) { return VolumeMap{nullptr, std::move(reason)}; }

// ext2/3/4: the block bitmap through libext2fs, which counts the superblocks, group descriptors, bitmaps, inode
// tables and the journal as used. Only a clean file system: a journal that needs recovery may hold blocks the bitmap
// does not show yet.
Result<VolumeMap> ext_free_space(std::string_view type, std::shared_ptr<BlockDevice> view) {
  auto vol = Ext2Volume::Open(view, false);
  if (!vol.ok()) {
    if (vol.status().code() == EIO) return vol.status();
    return copied_whole("it cannot be opened: " + vol.status().message());
  }
  ext2_super_block* sb = (*vol)->fs()->super;
  if (ext2fs_has_feature_journal_needs_recovery(sb))
    return copied_whole("the " + std::string(type) + " journal needs recovery (the guest was not shut down cleanly)");
  if (sb->s_state & EXT2_ERROR_FS) return copied_whole("the file system records errors");
  if (!(sb->s_state & EXT2_VALID_FS)) return copied_whole("the file system was not unmounted cleanly");
  std::shared_ptr<Ext2Volume> v(std::move(*vol));
  return VolumeMap{std::make_unique<Ext2GuestFs>(v, std::string(type)), ""};
}

// The reasons for leaving nothing out of a disk.
constexpr const char* kPartitionsOverlap = "partitions overlap";  // one volume's free space may be another's data
constexpr const char* kTableAndWholeDiskFs = "partition table and whole-disk file system: ambiguous";

// A partition, or the whole disk.
struct Volume {
  int partition = 0;
  uint64_t offset = 0, length = 0;
};

}  // namespace

uint64_t SparseMap::unused_bytes() const {
  uint64_t n = 0;
  for (auto [o, l] : unused) n += l;
  return n;
}

namespace {

// A reader's map, kept alive with the reader that owns it.
class TreeFreeSpace : public FreeSpaceMap {
 public:
  TreeFreeSpace(std::shared_ptr<FileTree> tree, FreeSpaceMap* map) : tree_(std::move(tree)), map_(map) {}
  Status unused_ranges(ByteRanges& out) override { return map_->unused_ranges(out); }

 private:
  std::shared_ptr<FileTree> tree_;
  FreeSpaceMap* map_;
};

}  // namespace

Result<VolumeMap> open_volume_free_space(std::string_view type, std::shared_ptr<BlockDevice> view) {
  VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> head, read_head(*view));
  const SwapSignature swap = find_swap_signature(head);
  if (swap.page) {
    // A swap (or hibernation) signature beside another's superblock: one of them was made over the other without
    // wiping it, and which one the guest uses is not known. The prober names swap before Btrfs, NTFS and vfat, so
    // a stale swap signature inside one of those would otherwise drop the whole file system after its first page.
    const char* what = swap.hibernation ? "hibernation image signature" : "swap signature";
    for (const std::string& other : probe_fs_all(head))
      if (other != kFsSwap) return copied_whole("ambiguous: " + std::string(what) + " and " + other);
    if (swap.hibernation) return copied_whole("the swap area holds a hibernation image");
  }
  if (is_ext(type)) return ext_free_space(type, std::move(view));
  if (type == kFsSwap) {
    if (!swap.page) return copied_whole("no swap signature at the end of a page of 4 to 64 KiB");
    return VolumeMap{std::make_unique<SwapFreeSpace>(swap.page, view->size()), ""};
  }
  if (type == kFsXfs) {
    auto tree = xfs::XfsTree::Open(view, "the XFS");
    if (!tree.ok()) return copied_whole("the XFS cannot be read: " + tree.status().message());
    // Blocks the log would write at the next mount are not in the free-space btrees yet.
    if ((*tree)->log_dirty()) return copied_whole("the XFS log is dirty (not replayed by vdkit)");
    return VolumeMap{std::make_unique<TreeFreeSpace>(*tree, (*tree)->free_space()), ""};
  }
  if (type == kFsBtrfs) {
    // The map keeps what a log tree awaiting replay may still claim (only space outside every chunk is left out).
    auto tree = btrfs::BtrfsTree::open(view, "the Btrfs");
    if (!tree.ok()) return copied_whole("the Btrfs cannot be read: " + tree.status().message());
    FreeSpaceMap* map = (*tree)->free_space();
    if (!map) return copied_whole("the Btrfs has no map of unused blocks");
    return VolumeMap{std::make_unique<TreeFreeSpace>(*tree, map), ""};
  }
  if (type == kFsLvm2Member) return copied_whole("an LVM2 PV inside a volume (vdkit maps PVs on disks and partitions)");
  if (type.empty()) return copied_whole("unknown content");
  return copied_whole("vdkit has no map of unused blocks for " + std::string(type));
}

namespace {

// One disk's map; `lvm` maps its PVs with the VGs found on all the guest's disks.
Result<SparseMap> build_disk_map(std::shared_ptr<BlockDevice> disk, int disk_index, LvmSparseMapper& lvm) {
  const uint64_t size = disk->size();
  ByteRanges table;
  VDKIT_ASSIGN_OR_RETURN(std::vector<Partition> parts, read_partition_table(*disk, &table));
  std::vector<Volume> volumes;
  if (parts.empty()) volumes.push_back({0, 0, size});
  for (const Partition& p : parts)
    if (!is_extended_container(p)) volumes.push_back({p.number, p.offset, p.length});
  std::sort(volumes.begin(), volumes.end(), [](const Volume& a, const Volume& b) { return a.offset < b.offset; });

  SparseMap out;
  // When set, nothing at all is left out, and every volume says why.
  std::string copy_all;
  for (size_t i = 1; i < volumes.size(); ++i)
    if (volumes[i].offset < volumes[i - 1].offset + volumes[i - 1].length) copy_all = kPartitionsOverlap;
  if (!parts.empty()) {
    // A file system or PV on the whole disk as well as a partition table: one was made over the other without
    // wiping it (ext never writes its first 1 KiB, so an old MBR can outlive mkfs there; sfdisk --wipe never leaves
    // the superblock), and which one the guest uses is not known. Either's free space may be the other's data.
    auto whole = probe_fs(*disk, 0, size);
    if (!whole.ok()) return whole.status().Context("probing the whole disk");
    if (!whole->type.empty()) {
      copy_all = kTableAndWholeDiskFs;
      VolumeSparseReport r;
      r.length = size;
      r.type = whole->type;
      r.reason = copy_all;
      out.volumes.push_back(std::move(r));
    }
  }
  // Kept whatever a volume's own map says: the table's sectors (MBR, EBRs, GPT areas) and the boot-loader gap before
  // the first partition (GRUB's core image, whatever the MBR code loads from there). A volume may cover them (a
  // logical partition over the next EBR, an entry starting at sector 0) and call them its free space.
  ByteRanges keep = table;
  if (!parts.empty()) keep.emplace_back(0, volumes.empty() ? size : volumes.front().offset);
  keep = normalize_ranges(std::move(keep), size);

  ByteRanges all;
  for (const Volume& v : volumes) {
    VolumeSparseReport r;
    r.partition = v.partition;
    r.offset = v.offset;
    r.length = v.length;
    std::string what = v.partition ? "partition " + std::to_string(v.partition) : std::string("the whole disk");
    auto probed = probe_fs(*disk, v.offset, v.length);
    if (!probed.ok()) return probed.status().Context("probing " + what);
    r.type = probed->type;
    if (!copy_all.empty()) {
      r.reason = copy_all;
      out.volumes.push_back(std::move(r));
      continue;
    }
    if (r.type == kFsLvm2Member) {
      std::string why;
      auto pv = lvm.map_pv(disk_index, v.partition, &why);
      if (!pv.ok()) return pv.status().Context("mapping the unused blocks of " + what);
      if (!*pv) {
        r.reason = why;
        out.volumes.push_back(std::move(r));
        continue;
      }
      r.mapped = true;
      r.vg = (*pv)->vg;
      // Each part is clipped to the volume and stripped of what `keep` holds, so the volume's count is their sum.
      auto place = [&](const ByteRanges& on_pv) {
        ByteRanges on_disk;
        for (auto [o, l] : normalize_ranges(on_pv, v.length)) on_disk.emplace_back(v.offset + o, l);
        uint64_t n = 0;
        for (auto [o, l] : subtract_ranges(std::move(on_disk), keep, size)) {
          all.emplace_back(o, l);
          n += l;
        }
        r.unused_bytes += n;
        return n;
      };
      r.free_extent_bytes = place((*pv)->free_extents);
      for (auto& lv : (*pv)->lvs) {
        lv.report.unused_bytes = place(lv.unused);
        r.lvs.push_back(std::move(lv.report));
      }
      out.volumes.push_back(std::move(r));
      continue;
    }
    std::shared_ptr<BlockDevice> view =
        v.partition ? std::shared_ptr<BlockDevice>(make_partition_view(disk, v.offset, v.length)) : disk;
    auto vm = open_volume_free_space(r.type, view);
    if (!vm.ok()) return vm.status().Context("mapping the unused blocks of " + what);
    ByteRanges ranges;
    if (vm->map) {
      Status st = vm->map->unused_ranges(ranges);
      if (st.code() == EIO) return st.Context("mapping the unused blocks of " + what);
      if (!st.ok()) vm->copied_whole_reason = "its allocation map cannot be read: " + st.message();
    }
    if (!vm->copied_whole_reason.empty()) {
      r.reason = vm->copied_whole_reason;
    } else {
      r.mapped = true;
      ByteRanges on_disk;
      for (auto [o, l] : normalize_ranges(std::move(ranges), v.length)) on_disk.emplace_back(v.offset + o, l);
      for (auto [o, l] : subtract_ranges(std::move(on_disk), keep, size)) {
        all.emplace_back(o, l);
        r.unused_bytes += l;
      }
    }
    out.volumes.push_back(std::move(r));
  }

  if (!parts.empty() && copy_all.empty()) {
    // Outside every volume: unused, but for what `keep` holds.
    ByteRanges used = keep;
    for (const Volume& v : volumes) used.emplace_back(v.offset, v.length);
    for (auto [o, l] : subtract_ranges({{0, size}}, std::move(used), size)) {
      all.emplace_back(o, l);
      out.outside_partitions_bytes += l;
    }
  }
  out.unused = normalize_ranges(std::move(all), size);
  return out;
}

}  // namespace

Result<std::vector<SparseMap>> build_sparse_maps(const std::vector<GuestDisk>& disks) {
  auto scan = scan_volume_groups(disks);
  if (!scan.ok() && scan.status().code() == EIO) return scan.status();
  if (!scan.ok()) {
    // The VGs cannot be told apart (a PV on two disks: a copy given twice?): every PV is then copied whole, saying
    // why; the rest of the guest is mapped as usual.
    lvm::ScanResult none;
    none.warnings.push_back(scan.status().message());
    scan = std::move(none);
  }
  LvmSparseMapper lvm(std::move(*scan));
  std::vector<SparseMap> out;
  for (size_t i = 0; i < disks.size(); ++i) {
    auto m = build_disk_map(disks[i].dev, static_cast<int>(i), lvm);
    if (!m.ok()) return disks.size() > 1 ? m.status().Context("'" + disks[i].name + "'") : m.status();
    out.push_back(std::move(*m));
  }
  return out;
}

Result<SparseMap> build_sparse_map(std::shared_ptr<BlockDevice> disk) {
  VDKIT_ASSIGN_OR_RETURN(auto maps, build_sparse_maps({{"the disk", std::move(disk)}}));
  return std::move(maps.front());
}

Result<std::shared_ptr<BlockDevice>> make_sparsified_device(std::shared_ptr<BlockDevice> disk, SparseMap* map) {
  auto built = build_sparse_map(disk);
  if (!built.ok())
    return built.status().Context(
        "finding the unused blocks (without --sparsify / sparsify=true the disk is copied "
        "as it is)");
  SparseMap m = std::move(*built);
  std::shared_ptr<BlockDevice> dev = make_masked_device(std::move(disk), m.unused);
  if (map) *map = std::move(m);
  return dev;
}

Result<std::vector<std::shared_ptr<BlockDevice>>> make_sparsified_devices(const std::vector<GuestDisk>& disks,
                                                                         std::vector<SparseMap>* maps) {
  auto built = build_sparse_maps(disks);
  if (!built.ok())
    return built.status().Context("finding the unused blocks (without --sparsify the disks are copied as they are)");
  std::vector<std::shared_ptr<BlockDevice>> out;
  for (size_t i = 0; i < disks.size(); ++i) out.push_back(make_masked_device(disks[i].dev, (*built)[i].unused));
  if (maps) *maps = std::move(*built);
  return out;
}

std::string sparse_summary(const SparseMap& m) {
  std::string s;
  for (const auto& v : m.volumes) {
    s += v.partition ? "partition " + std::to_string(v.partition) : std::string("whole disk");
    s += " (" + (v.type.empty() ? std::string("unknown") : v.type) + ", " + human_size(v.length) + "): ";
    s += v.mapped ? human_size(v.unused_bytes) + " unused, left out" : "copied whole: " + v.reason;
    if (!v.vg.empty()) s += " (VG " + v.vg + ": " + human_size(v.free_extent_bytes) + " in extents no LV uses)";
    s += "\n";
    for (const auto& lv : v.lvs) {
      s += "  LV " + lv.name + " (" + (lv.type.empty() ? std::string("unknown") : lv.type) + ", " +
           human_size(lv.length) + "): ";
      s += lv.mapped ? human_size(lv.unused_bytes) + " unused on this PV, left out" : "copied whole: " + lv.reason;
      s += "\n";
    }
  }
  if (m.outside_partitions_bytes)
    s += "outside the partitions: " + human_size(m.outside_partitions_bytes) + " left out\n";
  return s;
}

}  // namespace vdkit::guestfs
