// Adapts lvm::unused_extents to FreeSpaceMap: blockcore knows extents, guestfs owns the interface sparsify reads.
#include "guestfs/lvm_free_space.h"

#include <algorithm>

#include "blockcore/lvm/lvm_volume.h"

namespace vdkit::guestfs {

namespace {

class PvFreeSpace final : public FreeSpaceMap {
 public:
  PvFreeSpace(lvm::VolumeGroup vg, size_t pv, uint64_t size) : vg_(std::move(vg)), pv_(pv), size_(size) {}
  Status unused_ranges(std::vector<std::pair<uint64_t, uint64_t>>& out) override {
    out.clear();
    if (pv_ >= vg_.pvs.size()) return Status::Invalid("VG " + vg_.name + " has no PV " + std::to_string(pv_));
    for (const auto& r : lvm::unused_extents(vg_, pv_)) {
      if (r.offset >= size_) break;
      out.emplace_back(r.offset, std::min(r.length, size_ - r.offset));
    }
    return Status::Ok();
  }

 private:
  lvm::VolumeGroup vg_;
  size_t pv_;
  uint64_t size_;
};

}  // namespace

std::unique_ptr<FreeSpaceMap> make_pv_free_space_map(const lvm::VolumeGroup& vg, size_t pv_index,
                                                     uint64_t device_size) {
  return std::make_unique<PvFreeSpace>(vg, pv_index, device_size);
}

}  // namespace vdkit::guestfs
