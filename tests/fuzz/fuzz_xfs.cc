// Fuzzes the XFS reader (guestfs/xfs): superblock, log state, inodes, every fork and directory form, symbolic links,
// attributes and the free-space btrees, walked from the root. The input is the head of an image; the device reads
// zeros past it up to kDeviceBytes, so a corpus file holds only an image's metadata (its log then reads as zeroed).
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "blockcore/base/block_device.h"
#include "guestfs/xfs/xfs_tree.h"

namespace {

constexpr uint64_t kDeviceBytes = 64ull << 20;
constexpr int kMaxInodes = 400;
constexpr int kMaxDepth = 32;

class ZeroExtendedDevice final : public vdkit::BlockDevice {
 public:
  ZeroExtendedDevice(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return kDeviceBytes; }
  vdkit::Status read(uint64_t offset, std::span<uint8_t> buf) override {
    VDKIT_RETURN_IF_ERROR(check_range(offset, buf.size()));
    std::memset(buf.data(), 0, buf.size());
    if (offset < size_) std::memcpy(buf.data(), data_ + offset, std::min<uint64_t>(buf.size(), size_ - offset));
    return vdkit::Status::Ok();
  }
  vdkit::Status extents(uint64_t offset, uint64_t length, std::vector<vdkit::Extent>& out) override {
    out.push_back({offset, length, vdkit::ExtentType::kData});
    return vdkit::Status::Ok();
  }
  const vdkit::ImageInfo& info() const override { return info_; }

 private:
  const uint8_t* data_;
  size_t size_;
  vdkit::ImageInfo info_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vdkit::guestfs;
  auto dev = std::make_shared<ZeroExtendedDevice>(data, size);
  auto opened = xfs::XfsTree::Open(dev, "fuzz");
  if (!opened.ok()) return 0;
  xfs::XfsTree& t = **opened;
  (void)t.warnings();
  (void)t.state();
  std::set<uint64_t> seen;
  std::vector<std::pair<uint64_t, int>> todo = {{t.root_ino(), 0}};
  std::vector<uint8_t> buf(8192);
  while (!todo.empty() && seen.size() < kMaxInodes) {
    auto [ino, depth] = todo.back();
    todo.pop_back();
    if (!seen.insert(ino).second || depth > kMaxDepth) continue;
    auto st = t.stat(ino);
    if (!st.ok()) continue;
    std::vector<std::string> names;
    if (t.list_xattrs(ino, names).ok())
      for (const auto& n : names) (void)t.get_xattr(ino, n);
    if (S_ISDIR(st->mode)) {
      std::vector<TreeEntry> entries;
      if (!t.read_dir(ino, entries).ok()) continue;
      for (const auto& e : entries) {
        auto child = t.lookup(ino, e.name);
        if (child.ok()) todo.emplace_back(*child, depth + 1);
      }
    } else if (S_ISREG(st->mode)) {
      (void)t.read(ino, 0, buf);
      if (st->size > buf.size()) (void)t.read(ino, st->size - 1, buf);
    } else if (S_ISLNK(st->mode)) {
      (void)t.read_link(ino);
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  (void)t.unused_ranges(ranges);
  return 0;
}
