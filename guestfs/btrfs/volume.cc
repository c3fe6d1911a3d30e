// BtrfsVolume: superblock, chunk map and verified tree blocks.
#include "guestfs/btrfs/volume.h"

#include <algorithm>
#include <cstring>

#include "blockcore/base/checked.h"

namespace vdkit::guestfs::btrfs {

std::string uuid_string(const uint8_t u[16]) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += kHex[u[i] >> 4];
    s += kHex[u[i] & 15];
  }
  return s;
}

std::string BtrfsVolume::block_name(uint64_t bytenr) const {
  return "Btrfs on " + what_ + ": tree block at logical " + std::to_string(bytenr);
}

Result<std::unique_ptr<BtrfsVolume>> BtrfsVolume::open(std::shared_ptr<BlockDevice> dev, std::string what) {
  std::unique_ptr<BtrfsVolume> v(new BtrfsVolume());
  v->dev_ = std::move(dev);
  v->what_ = std::move(what);
  VDKIT_RETURN_IF_ERROR(v->read_super());
  VDKIT_RETURN_IF_ERROR(v->load_chunks());
  return v;
}

Status BtrfsVolume::read_super() {
  std::string where = "Btrfs on " + what_ + ": superblock at offset 65536";
  if (dev_->size() < kSuperOffset + kSuperSize)
    return Status::Corrupt(where + ": the device (" + std::to_string(dev_->size()) + " bytes) is too small to hold it");
  std::vector<uint8_t> b(kSuperSize);
  VDKIT_RETURN_IF_ERROR(dev_->read(kSuperOffset, b).Context(where));
  const uint8_t* p = b.data();
  if (std::memcmp(p + sb::kMagic, kMagic, 8) != 0) return Status::Corrupt(where + ": no _BHRfS_M magic");
  VDKIT_ASSIGN_OR_RETURN(csum_, Checksum::for_type(load_le16(p + sb::kCsumType)));
  if (!csum_.verify(std::span<const uint8_t>(p + kCsumSize, kSuperSize - kCsumSize), p))
    return Status::Corrupt(where + ": " + csum_.name() + " checksum mismatch");
  if (load_le64(p + sb::kBytenr) != kSuperOffset)
    return Status::Corrupt(where + ": field bytenr is " + std::to_string(load_le64(p + sb::kBytenr)));
  std::memcpy(sb_.fsid, p + sb::kFsid, 16);
  sb_.generation = load_le64(p + sb::kGeneration);
  sb_.root = load_le64(p + sb::kRoot);
  sb_.chunk_root = load_le64(p + sb::kChunkRoot);
  sb_.log_root = load_le64(p + sb::kLogRoot);
  sb_.total_bytes = load_le64(p + sb::kTotalBytes);
  sb_.bytes_used = load_le64(p + sb::kBytesUsed);
  sb_.num_devices = load_le64(p + sb::kNumDevices);
  sb_.sectorsize = load_le32(p + sb::kSectorSize);
  sb_.nodesize = load_le32(p + sb::kNodeSize);
  sb_.chunk_root_generation = load_le64(p + sb::kChunkRootGeneration);
  sb_.compat_ro = load_le64(p + sb::kCompatRo);
  sb_.incompat = load_le64(p + sb::kIncompat);
  sb_.csum_type = load_le16(p + sb::kCsumType);
  sb_.root_level = p[sb::kRootLevel];
  sb_.chunk_root_level = p[sb::kChunkRootLevel];
  sb_.log_root_level = p[sb::kLogRootLevel];
  sb_.devid = load_le64(p + sb::kDevItem + dev::kDevid);
  sb_.dev_total_bytes = load_le64(p + sb::kDevItem + dev::kTotalBytes);
  sb_.label.assign(reinterpret_cast<const char*>(p + sb::kLabel), strnlen(reinterpret_cast<const char*>(p + sb::kLabel), 256));
  if (sb_.incompat & kIncompatMetadataUuid) std::memcpy(sb_.metadata_uuid, p + sb::kMetadataUuid, 16);
  else std::memcpy(sb_.metadata_uuid, sb_.fsid, 16);

  auto field = [&](const char* name, uint64_t value, const std::string& why) {
    return Status::Corrupt(where + ": field " + name + " is " + std::to_string(value) + " (" + why + ")");
  };
  if (!is_power_of_two(sb_.sectorsize) || sb_.sectorsize < 4096 || sb_.sectorsize > 65536)
    return field("sectorsize", sb_.sectorsize, "a power of two from 4096 to 65536");
  if (!is_power_of_two(sb_.nodesize) || sb_.nodesize < sb_.sectorsize || sb_.nodesize > 65536)
    return field("nodesize", sb_.nodesize, "a power of two from sectorsize to 65536");
  if (sb_.root_level >= kMaxLevel) return field("root_level", sb_.root_level, "levels are 0 to 7");
  if (sb_.chunk_root_level >= kMaxLevel) return field("chunk_root_level", sb_.chunk_root_level, "levels are 0 to 7");
  if (sb_.root % sb_.sectorsize || sb_.chunk_root % sb_.sectorsize)
    return Status::Corrupt(where + ": root or chunk_root is not aligned to the sector size");
  uint64_t unknown = sb_.incompat & ~kIncompatKnown;
  if (unknown) return Status::Unsupported(where + ": unknown incompatible feature bits 0x" + hex(unknown));
  if (sb_.incompat & kIncompatExtentTreeV2)
    return Status::Unsupported(where + ": the extent-tree-v2 feature is not supported");
  if (sb_.num_devices == 0) return field("num_devices", 0, "at least 1");
  uint32_t array_size = load_le32(p + sb::kSysChunkArraySize);
  if (array_size > kSysChunkArrayMax) return field("sys_chunk_array_size", array_size, "at most 2048");
  sb_.sys_chunk_array.assign(p + sb::kSysChunkArray, p + sb::kSysChunkArray + array_size);
  return Status::Ok();
}

Status BtrfsVolume::load_chunk(const Key& key, std::span<const uint8_t> it, bool from_sys_array) {
  std::string where = "Btrfs on " + what_ + ": chunk at logical " + std::to_string(key.offset);
  if (it.size() < chunk::kStripes) return Status::Corrupt(where + ": item of " + std::to_string(it.size()) + " bytes");
  const uint8_t* p = it.data();
  Chunk c;
  c.logical = key.offset;
  c.length = load_le64(p + chunk::kLength);
  c.type = load_le64(p + chunk::kType);
  uint16_t num = load_le16(p + chunk::kNumStripes);
  if (num == 0 || num > kMaxStripes) return Status::Corrupt(where + ": num_stripes is " + std::to_string(num));
  if (it.size() < chunk::kStripes + size_t{num} * chunk::kStripeSize)
    return Status::Corrupt(where + ": item too small for " + std::to_string(num) + " stripes");
  if (c.length == 0 || c.length % sb_.sectorsize || c.logical % sb_.sectorsize || !checked_add(c.logical, c.length))
    return Status::Corrupt(where + ": length " + std::to_string(c.length) + " is not a whole number of sectors");
  uint64_t profile = c.type & kBgProfileMask;
  if (!is_power_of_two(profile) && profile != 0)
    return Status::Corrupt(where + ": type 0x" + hex(c.type) + " names more than one profile");
  std::vector<uint64_t> devids;
  for (uint16_t i = 0; i < num; ++i) {
    const uint8_t* s = p + chunk::kStripes + i * chunk::kStripeSize;
    uint64_t devid = load_le64(s), off = load_le64(s + 8);
    devids.push_back(devid);
    if (devid == sb_.devid) c.copies.push_back(off);
  }
  bool mirrored = profile == 0 || profile == kBgDup || profile == kBgRaid1 || profile == kBgRaid1c3 ||
                  profile == kBgRaid1c4;
  if (profile == kBgDup && (c.copies.size() != 2 || num != 2))
    return Status::Corrupt(where + ": DUP chunk without two stripes on this device");
  if (!mirrored && num == 1 && c.copies.size() == 1) mirrored = true;  // a striped profile over one device
  if (!mirrored || c.copies.empty()) {
    std::string ids;
    for (uint64_t d : devids) ids += (ids.empty() ? "" : ", ") + std::to_string(d);
    return Status::Unsupported(where + " is " + profile_name(c.type) + " over devices " + ids + "; this disk is device " +
                               std::to_string(sb_.devid) + " of " + std::to_string(sb_.num_devices) +
                               ", and the Btrfs devices it needs are not part of this image");
  }
  for (uint64_t off : c.copies) {
    auto end = checked_add(off, c.length);
    if (!end || *end > dev_->size())
      return Status::Corrupt(where + ": stored at physical " + std::to_string(off) + " + " + std::to_string(c.length) +
                             ", past the end of the device (" + std::to_string(dev_->size()) + " bytes): truncated?");
  }
  auto pos = std::lower_bound(chunks_.begin(), chunks_.end(), c.logical,
                              [](const Chunk& a, uint64_t l) { return a.logical < l; });
  if (pos != chunks_.end() && pos->logical == c.logical && !from_sys_array) {
    // The chunk tree repeats the system chunks of the superblock's array: they must agree.
    if (pos->length != c.length || pos->copies != c.copies)
      return Status::Corrupt(where + ": differs from the superblock's system chunk array");
    return Status::Ok();
  }
  if ((pos != chunks_.end() && pos->logical < c.logical + c.length) ||
      (pos != chunks_.begin() && std::prev(pos)->logical + std::prev(pos)->length > c.logical))
    return Status::Corrupt(where + " overlaps another chunk");
  if (chunks_.size() >= kMaxChunks) return Status::Corrupt(where + ": more than " + std::to_string(kMaxChunks) + " chunks");
  chunks_.insert(pos, std::move(c));
  return Status::Ok();
}

Status BtrfsVolume::load_chunks() {
  // The system chunk array: (key, chunk item) pairs, enough to read the chunk tree.
  const auto& a = sb_.sys_chunk_array;
  size_t off = 0;
  while (off < a.size()) {
    if (a.size() - off < kKeySize + chunk::kStripes)
      return Status::Corrupt("Btrfs on " + what_ + ": superblock sys_chunk_array is cut short at byte " + std::to_string(off));
    Key k = Key::load(a.data() + off);
    if (k.type != kChunkItem)
      return Status::Corrupt("Btrfs on " + what_ + ": sys_chunk_array holds key " + k.str() + ", not a chunk item");
    off += kKeySize;
    size_t len = chunk::kStripes + size_t{load_le16(a.data() + off + chunk::kNumStripes)} * chunk::kStripeSize;
    if (len > a.size() - off) return Status::Corrupt("Btrfs on " + what_ + ": sys_chunk_array item past its end");
    VDKIT_RETURN_IF_ERROR(load_chunk(k, std::span<const uint8_t>(a.data() + off, len), true));
    off += len;
  }
  if (chunks_.empty()) return Status::Corrupt("Btrfs on " + what_ + ": the superblock's sys_chunk_array is empty");
  // Then every chunk from the chunk tree.
  Status st = scan(chunk_tree(), {kFirstChunkTreeObjectid, kChunkItem, 0}, {kFirstChunkTreeObjectid, kChunkItem, ~0ull},
                   [&](const Key& k, std::span<const uint8_t> item) -> Result<bool> {
                     VDKIT_RETURN_IF_ERROR(load_chunk(k, item, false));
                     return true;
                   });
  return st.Context("reading the chunk tree");
}

Result<const Chunk*> BtrfsVolume::chunk_of(uint64_t logical, uint64_t length) const {
  auto pos = std::upper_bound(chunks_.begin(), chunks_.end(), logical,
                              [](uint64_t l, const Chunk& c) { return l < c.logical; });
  if (pos == chunks_.begin() || std::prev(pos)->logical + std::prev(pos)->length <= logical)
    return Status::Corrupt("Btrfs on " + what_ + ": logical address " + std::to_string(logical) + " is in no chunk");
  const Chunk& c = *std::prev(pos);
  if (length > c.logical + c.length - logical)
    return Status::Corrupt("Btrfs on " + what_ + ": logical range " + std::to_string(logical) + " + " +
                           std::to_string(length) + " runs past the end of its chunk");
  return &c;
}

Status BtrfsVolume::read_logical(uint64_t logical, std::span<uint8_t> buf) {
  while (!buf.empty()) {
    auto pos = std::upper_bound(chunks_.begin(), chunks_.end(), logical,
                                [](uint64_t l, const Chunk& c) { return l < c.logical; });
    if (pos == chunks_.begin() || std::prev(pos)->logical + std::prev(pos)->length <= logical)
      return Status::Corrupt("Btrfs on " + what_ + ": logical address " + std::to_string(logical) + " is in no chunk");
    const Chunk& c = *std::prev(pos);
    uint64_t n = std::min<uint64_t>(buf.size(), c.logical + c.length - logical);
    VDKIT_RETURN_IF_ERROR(dev_->read(c.copies[0] + (logical - c.logical), buf.first(n)));
    buf = buf.subspan(n);
    logical += n;
  }
  return Status::Ok();
}

Result<std::shared_ptr<TreeBlock>> BtrfsVolume::load_block(uint64_t bytenr, uint64_t physical) {
  auto b = std::make_shared<TreeBlock>();
  b->data.resize(sb_.nodesize);
  VDKIT_RETURN_IF_ERROR(dev_->read(physical, b->data));
  const uint8_t* p = b->data.data();
  if (!csum_.verify(std::span<const uint8_t>(p + kCsumSize, sb_.nodesize - kCsumSize), p))
    return Status::Corrupt(block_name(bytenr) + ": " + csum_.name() + " checksum mismatch");
  if (load_le64(p + hdr::kBytenr) != bytenr)
    return Status::Corrupt(block_name(bytenr) + ": header says it is at " + std::to_string(load_le64(p + hdr::kBytenr)));
  if (std::memcmp(p + hdr::kFsid, sb_.metadata_uuid, 16) != 0)
    return Status::Corrupt(block_name(bytenr) + ": belongs to file system " + uuid_string(p + hdr::kFsid));
  b->bytenr = bytenr;
  b->generation = load_le64(p + hdr::kGeneration);
  b->owner = load_le64(p + hdr::kOwner);
  b->nritems = load_le32(p + hdr::kNritems);
  b->level = p[hdr::kLevel];
  VDKIT_RETURN_IF_ERROR(check_structure(*b));
  return b;
}

// Everything a block must satisfy on its own: a level that exists, items that fit, keys strictly ascending.
Status BtrfsVolume::check_structure(const TreeBlock& b) const {
  std::string name = block_name(b.bytenr);
  if (b.level >= kMaxLevel) return Status::Corrupt(name + ": level " + std::to_string(b.level));
  size_t room = sb_.nodesize - hdr::kSize;
  size_t each = b.level ? kKeyPtrSize : kItemSize;
  if (b.nritems > room / each)
    return Status::Corrupt(name + ": nritems " + std::to_string(b.nritems) + " cannot fit in the block");
  if (b.level && b.nritems == 0) return Status::Corrupt(name + ": an internal node with no children");
  size_t headers_end = size_t{b.nritems} * each;
  // Leaf item data sits at the end of the block, after the item headers, in descending order of position.
  uint64_t prev_start = room;
  for (uint32_t i = 0; i < b.nritems; ++i) {
    if (i && !(b.key(i - 1) < b.key(i)))
      return Status::Corrupt(name + ": keys out of order at slot " + std::to_string(i) + " " + b.key(i).str());
    if (b.level) continue;
    const uint8_t* ip = b.data.data() + hdr::kSize + i * kItemSize + kKeySize;
    uint64_t off = load_le32(ip), size = load_le32(ip + 4);
    if (off < headers_end || off + size > prev_start)
      return Status::Corrupt(name + ": item " + std::to_string(i) + " data at " + std::to_string(off) + " size " +
                             std::to_string(size) + " overlaps other items or leaves the block");
    prev_start = off;
  }
  return Status::Ok();
}

Result<std::shared_ptr<const TreeBlock>> BtrfsVolume::read_block(uint64_t bytenr, int level, uint64_t generation,
                                                                 uint64_t owner, const Key* first_key) {
  std::string name = block_name(bytenr);
  std::shared_ptr<const TreeBlock> b;
  auto hit = cache_.find(bytenr);
  if (hit != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, hit->second);
    b = *hit->second;
  } else {
    if (bytenr % sb_.sectorsize) return Status::Corrupt(name + ": not aligned to the sector size");
    VDKIT_ASSIGN_OR_RETURN(const Chunk* c, chunk_of(bytenr, sb_.nodesize));
    // Each copy in turn (DUP, mirrors): the first that passes its checks wins.
    Status first_error;
    for (uint64_t base : c->copies) {
      auto r = load_block(bytenr, base + (bytenr - c->logical));
      if (r.ok()) {
        b = std::move(*r);
        break;
      }
      if (first_error.ok()) first_error = r.status();
    }
    if (!b) return first_error;
    lru_.push_front(b);
    cache_[bytenr] = lru_.begin();
    cache_bytes_ += b->data.size();
    while (cache_bytes_ > kBlockCacheBytes && lru_.size() > 1) {
      cache_bytes_ -= lru_.back()->data.size();
      cache_.erase(lru_.back()->bytenr);
      lru_.pop_back();
    }
  }
  // What the pointer to it promised.
  if (b->level != level)
    return Status::Corrupt(name + ": level " + std::to_string(b->level) + ", expected " + std::to_string(level));
  if (b->generation != generation)
    return Status::Corrupt(name + ": generation " + std::to_string(b->generation) + ", expected " + std::to_string(generation));
  if (b->generation > sb_.generation)
    return Status::Corrupt(name + ": generation " + std::to_string(b->generation) + " is newer than the superblock's");
  // Snapshots share blocks: a subvolume's tree may hold blocks any subvolume tree owns; other trees own theirs.
  bool owner_ok = is_fs_tree(owner) ? is_fs_tree(b->owner) : b->owner == owner;
  if (!owner_ok)
    return Status::Corrupt(name + ": owner " + std::to_string(b->owner) + ", expected tree " + std::to_string(owner));
  if (first_key && (b->nritems == 0 || b->key(0) != *first_key))
    return Status::Corrupt(name + ": first key " + (b->nritems ? b->key(0).str() : std::string("(none)")) +
                           " differs from its parent's " + first_key->str());
  return b;
}

Status BtrfsVolume::scan_block(const TreeBlock& b, const Key& lo, const Key& hi, const Key* upper, const ItemFn& fn,
                               bool& stop, uint64_t owner) {
  if (b.nritems && upper && !(b.key(b.nritems - 1) < *upper))
    return Status::Corrupt(block_name(b.bytenr) + ": last key " + b.key(b.nritems - 1).str() +
                           " is not below the next key of its parent " + upper->str());
  // The first slot that can hold lo: binary search over the block's keys.
  uint32_t a = 0, z = b.nritems;
  while (a < z) {
    uint32_t m = (a + z) / 2;
    if (b.key(m) < lo) a = m + 1;
    else z = m;
  }
  if (b.level == 0) {
    for (uint32_t i = a; i < b.nritems && !stop; ++i) {
      Key k = b.key(i);
      if (hi < k) break;
      VDKIT_ASSIGN_OR_RETURN(bool more, fn(k, b.item(i)));
      if (!more) stop = true;
    }
    return Status::Ok();
  }
  // In a node, the child before the first key >= lo may still hold keys >= lo.
  uint32_t i = (a < b.nritems && b.key(a) == lo) ? a : (a ? a - 1 : 0);
  for (; i < b.nritems && !stop; ++i) {
    Key k = b.key(i);
    if (hi < k) break;
    Key next;
    const Key* up = upper;
    if (i + 1 < b.nritems) {
      next = b.key(i + 1);
      up = &next;
    }
    VDKIT_ASSIGN_OR_RETURN(auto child, read_block(b.child(i), b.level - 1, b.child_generation(i), owner, &k));
    VDKIT_RETURN_IF_ERROR(scan_block(*child, lo, hi, up, fn, stop, owner));
  }
  return Status::Ok();
}

Status BtrfsVolume::scan(const TreeRoot& root, const Key& lo, const Key& hi, const ItemFn& fn) {
  if (root.level >= kMaxLevel) return Status::Corrupt(block_name(root.bytenr) + ": tree root level " + std::to_string(root.level));
  VDKIT_ASSIGN_OR_RETURN(auto b, read_block(root.bytenr, root.level, root.generation, root.owner, nullptr));
  bool stop = false;
  return scan_block(*b, lo, hi, nullptr, fn, stop, root.owner);
}

Result<std::optional<std::pair<Key, std::vector<uint8_t>>>> BtrfsVolume::find_last_le(const TreeRoot& root,
                                                                                      const Key& key) {
  VDKIT_ASSIGN_OR_RETURN(auto b, read_block(root.bytenr, root.level, root.generation, root.owner, nullptr));
  while (true) {
    // The last slot whose key is <= key.
    uint32_t a = 0, z = b->nritems;
    while (a < z) {
      uint32_t m = (a + z) / 2;
      if (key < b->key(m)) z = m;
      else a = m + 1;
    }
    if (a == 0) return std::optional<std::pair<Key, std::vector<uint8_t>>>();
    uint32_t slot = a - 1;
    Key k = b->key(slot);
    if (b->level == 0) {
      auto d = b->item(slot);
      return std::optional<std::pair<Key, std::vector<uint8_t>>>(std::pair(k, std::vector<uint8_t>(d.begin(), d.end())));
    }
    VDKIT_ASSIGN_OR_RETURN(b, read_block(b->child(slot), b->level - 1, b->child_generation(slot), root.owner, &k));
  }
}

Result<std::optional<std::vector<uint8_t>>> BtrfsVolume::find(const TreeRoot& root, const Key& key) {
  VDKIT_ASSIGN_OR_RETURN(auto r, find_last_le(root, key));
  if (!r || r->first != key) return std::optional<std::vector<uint8_t>>();
  return std::optional<std::vector<uint8_t>>(std::move(r->second));
}

}  // namespace vdkit::guestfs::btrfs
