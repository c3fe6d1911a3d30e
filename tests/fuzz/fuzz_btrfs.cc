// Fuzzes the Btrfs reader: superblock, chunk map, tree blocks, subvolumes, directories, extents, decompression,
// xattrs and the free-space map. The input is a sparse image: records of a 4-byte little-endian 4 KiB block index
// and 4096 bytes (scripts/make-fuzz-seeds makes them from mkfs.btrfs images). Checksums of the superblock and of
// every tree block are recomputed, so mutations reach the structure checks instead of stopping at a checksum.
#include <sys/stat.h>

#include <cstring>
#include <map>

#include "blockcore/base/block_device.h"
#include "guestfs/btrfs/btrfs_tree.h"

namespace {

using namespace vdkit;
using namespace vdkit::guestfs::btrfs;

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kDeviceSize = 256ull << 20;
constexpr int kMaxVisits = 400;

class SparseDevice : public BlockDevice {
 public:
  std::map<uint64_t, std::vector<uint8_t>> blocks;  // by 4 KiB index
  uint64_t size() const override { return kDeviceSize; }
  Status read(uint64_t off, std::span<uint8_t> buf) override {
    if (off > kDeviceSize || buf.size() > kDeviceSize - off) return Status::IoError("read past the end");
    for (size_t done = 0; done < buf.size();) {
      uint64_t pos = off + done, idx = pos / kBlock, in = pos % kBlock;
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock - in, buf.size() - done));
      auto it = blocks.find(idx);
      if (it == blocks.end()) std::memset(buf.data() + done, 0, n);
      else std::memcpy(buf.data() + done, it->second.data() + in, n);
      done += n;
    }
    return Status::Ok();
  }
  Status extents(uint64_t off, uint64_t len, std::vector<Extent>& out) override {
    out.push_back({off, len, ExtentType::kData});
    return Status::Ok();
  }
  const ImageInfo& info() const override { return info_; }
  uint8_t* at(uint64_t off) {
    auto it = blocks.find(off / kBlock);
    return it == blocks.end() ? nullptr : it->second.data() + off % kBlock;
  }

 private:
  ImageInfo info_;
};

void fix_checksums(SparseDevice& d) {
  uint8_t* sb = d.at(kSuperOffset);
  if (!sb) return;
  auto csum = Checksum::for_type(load_le16(sb + sb::kCsumType));
  if (!csum.ok()) return;
  uint32_t nodesize = load_le32(sb + sb::kNodeSize);
  // Tree blocks: nodesize-aligned runs of stored blocks that carry the file system's fsid.
  if (nodesize >= kBlock && nodesize <= 65536 && (nodesize & (nodesize - 1)) == 0) {
    std::vector<uint8_t> buf(nodesize);
    for (auto& [idx, data] : d.blocks) {
      uint64_t off = idx * kBlock;
      if (off % nodesize || off == 0 || std::memcmp(data.data() + hdr::kFsid, sb + sb::kFsid, 16) != 0) continue;
      (void)d.read(off, buf);
      uint8_t sum[kCsumSize];
      csum->compute(std::span<const uint8_t>(buf.data() + kCsumSize, nodesize - kCsumSize), sum);
      std::memcpy(data.data(), sum, kCsumSize);
    }
  }
  std::vector<uint8_t> s(sb, sb + kSuperSize);
  uint8_t sum[kCsumSize];
  csum->compute(std::span<const uint8_t>(s.data() + kCsumSize, kSuperSize - kCsumSize), sum);
  std::memcpy(sb, sum, kCsumSize);
}

void walk(BtrfsTree& t, uint64_t ino, int depth, int& visits) {
  if (depth > 6 || ++visits > kMaxVisits) return;
  auto st = t.stat(ino);
  if (!st.ok()) return;
  std::vector<std::string> names;
  (void)t.list_xattrs(ino, names);
  for (const auto& n : names) (void)t.get_xattr(ino, n);
  if (S_ISLNK(st->mode)) (void)t.read_link(ino);
  if (S_ISREG(st->mode)) {
    std::vector<uint8_t> buf(200000);
    (void)t.read(ino, 0, buf);
    if (st->size > 5000) (void)t.read(ino, st->size - 5000, std::span<uint8_t>(buf.data(), 4999));
  }
  if (S_ISDIR(st->mode)) {
    std::vector<guestfs::TreeEntry> entries;
    if (!t.read_dir(ino, entries).ok()) return;
    for (const auto& e : entries) {
      (void)t.lookup(ino, e.name);
      walk(t, e.ino, depth + 1, visits);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto dev = std::make_shared<SparseDevice>();
  for (size_t off = 0; off + 4 + kBlock <= size && dev->blocks.size() < 4096; off += 4 + kBlock) {
    uint64_t idx = load_le32(data + off);
    if (idx >= kDeviceSize / kBlock) continue;
    dev->blocks[idx].assign(data + off + 4, data + off + 4 + kBlock);
  }
  fix_checksums(*dev);
  for (const char* subvol : {"", "5"}) {
    auto t = BtrfsTree::open(dev, "fuzz", subvol);
    if (!t.ok()) continue;
    int visits = 0;
    walk(**t, (*t)->root_ino(), 0, visits);
    std::vector<std::pair<uint64_t, uint64_t>> free;
    (void)(*t)->free_space()->unused_ranges(free);
    (void)(*t)->warnings();
  }
  return 0;
}
