// Shared pieces of the BlockDevice contract: extent merging, range checks, read-only defaults.
#include "blockcore/base/block_device.h"

#include "blockcore/base/checked.h"

namespace vdkit {

const char* to_string(ExtentType t) {
  switch (t) {
    case ExtentType::kData: return "data";
    case ExtentType::kZero: return "zero";
    case ExtentType::kHole: return "hole";
  }
  return "?";
}

std::vector<std::string> chain_warnings(const ImageInfo& top) {
  std::vector<std::string> out;
  for (const ImageInfo* i = &top; i; i = i->backing.get()) out.insert(out.end(), i->warnings.begin(), i->warnings.end());
  return out;
}

void append_extent(std::vector<Extent>& out, const Extent& e) {
  if (e.length == 0) return;
  if (!out.empty()) {
    Extent& last = out.back();
    if (last.type == e.type && last.offset + last.length == e.offset) {
      last.length += e.length;
      return;
    }
  }
  out.push_back(e);
}

Status BlockDevice::check_range(uint64_t offset, uint64_t len) const {
  if (!range_within(offset, len, size()))
    return Status::Invalid("request of " + std::to_string(len) + " bytes at offset " + std::to_string(offset) +
                           " is beyond the end of the device (" + std::to_string(size()) + " bytes)");
  return Status::Ok();
}

Status BlockDevice::write(uint64_t, std::span<const uint8_t>) {
  return Status::Error(EROFS, "this device is read-only");
}
Status BlockDevice::zero(uint64_t, uint64_t) { return Status::Error(EROFS, "this device is read-only"); }
Status BlockDevice::trim(uint64_t, uint64_t) { return Status::Error(EROFS, "this device is read-only"); }
Status BlockDevice::flush() { return Status::Ok(); }
Status BlockDevice::prefetch(uint64_t offset, uint64_t length) {
  return check_range(offset, length);
}

}  // namespace vdkit
