// Fuzzes build_sparse_map: partition tables (with their EBR chains and GPT areas), the prober, ext2/3/4 superblocks
// and bitmaps through libext2fs, swap headers, LVM2 PVs (label, metadata, each LV's segments mapped back to the PV). The map must stay inside the disk, sorted and apart, and reads of the
// masked device must work wherever the map points; no sector of the partition table is ever in the map.
#include <cstdlib>

#include "blockcore/layers/masked.h"
#include "blockcore/layers/partition.h"
#include "guestfs/sparse_map.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("disk.raw", data, size);
  vdkit::OpenOptions o;
  o.format = "raw";
  auto dev = vdkit::open_image(path, o);
  if (!dev.ok()) return 0;
  std::shared_ptr<vdkit::BlockDevice> disk(std::move(*dev));
  vdkit::guestfs::SparseMap map;
  auto masked = vdkit::guestfs::make_sparsified_device(disk, &map);
  if (!masked.ok()) return 0;
  uint64_t end = 0;
  for (auto [off, len] : map.unused) {
    if (len == 0 || off < end || off + len > disk->size()) std::abort();
    end = off + len + 1;  // apart: touching ranges would have been merged
  }
  // The partition table's own sectors are never left out, whatever a volume's map says.
  vdkit::ByteRanges table;
  if (vdkit::read_partition_table(*disk, &table).ok())
    for (auto [off, len] : table)
      if (vdkit::overlap_bytes(map.unused, off, len)) std::abort();
  for (const auto& v : map.volumes) {
    if (v.offset + v.length > disk->size() || v.unused_bytes > v.length) std::abort();
    // A PV's count is its free extents and its LVs' parts, nothing else; no LV skips more than its size.
    uint64_t parts = v.free_extent_bytes;
    for (const auto& lv : v.lvs) {
      if (lv.unused_bytes > lv.length || (!lv.mapped && lv.unused_bytes)) std::abort();
      parts += lv.unused_bytes;
    }
    if (!v.vg.empty() && parts != v.unused_bytes) std::abort();
  }
  (void)vdkit::guestfs::sparse_summary(map);
  vdkit::fuzz::exercise(**masked);
  return 0;
}
