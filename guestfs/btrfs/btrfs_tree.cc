// BtrfsTree: inodes, directories, extents and xattrs of Btrfs subvolumes.
#include "guestfs/btrfs/btrfs_tree.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

#include "blockcore/base/checked.h"
#include "guestfs/btrfs/checksum.h"
#include "guestfs/btrfs/compress.h"

namespace vdkit::guestfs::btrfs {

namespace {

timespec load_time(const uint8_t* p) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(load_le64(p));
  t.tv_nsec = std::min<long>(load_le32(p + 8), 999999999);
  return t;
}

uint32_t type_bits(uint8_t ft) {
  switch (ft & 0x7f) {
    case kFtRegFile: return S_IFREG;
    case kFtDir: return S_IFDIR;
    case kFtChrdev: return S_IFCHR;
    case kFtBlkdev: return S_IFBLK;
    case kFtFifo: return S_IFIFO;
    case kFtSock: return S_IFSOCK;
    case kFtSymlink: return S_IFLNK;
    default: return 0;
  }
}

// One packed dir_item (DIR_ITEM, DIR_INDEX and XATTR_ITEM share it): several may share an item on a hash collision.
struct DirItem {
  Key location;
  uint8_t type;
  std::string_view name, data;
};

Status for_each_dir_item(std::span<const uint8_t> d, const std::string& what,
                         const std::function<bool(const DirItem&)>& fn) {
  size_t off = 0;
  while (off < d.size()) {
    if (d.size() - off < dir::kHeaderBytes) return Status::Corrupt(what + ": directory item cut short");
    const uint8_t* p = d.data() + off;
    size_t nl = load_le16(p + dir::kNameLen), dl = load_le16(p + dir::kDataLen);
    if (nl + dl > d.size() - off - dir::kHeaderBytes || nl == 0)
      return Status::Corrupt(what + ": directory item name/data of " + std::to_string(nl) + "+" + std::to_string(dl) +
                             " bytes does not fit its item");
    DirItem it{Key::load(p + dir::kLocation), p[dir::kType],
               std::string_view(reinterpret_cast<const char*>(p) + dir::kHeaderBytes, nl),
               std::string_view(reinterpret_cast<const char*>(p) + dir::kHeaderBytes + nl, dl)};
    if (!fn(it)) return Status::Ok();
    off += dir::kHeaderBytes + nl + dl;
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<BtrfsTree>> BtrfsTree::open(std::shared_ptr<BlockDevice> dev, const std::string& what,
                                                   const std::string& subvol) {
  std::shared_ptr<BtrfsTree> t(new BtrfsTree());
  VDKIT_ASSIGN_OR_RETURN(t->vol_, BtrfsVolume::open(std::move(dev), what));
  VDKIT_ASSIGN_OR_RETURN(t->subvols_, list_subvolumes(*t->vol_));
  VDKIT_ASSIGN_OR_RETURN(t->default_id_, default_subvolume_id(*t->vol_));
  const Subvolume* shown = subvol.empty() ? find_subvolume_by_id(t->subvols_, t->default_id_)
                                          : find_subvolume(t->subvols_, subvol);
  if (!shown) {
    std::string names;
    for (const auto& s : t->subvols_)
      names += (names.empty() ? "" : ", ") + std::to_string(s.id) + " " + (s.path.empty() ? "/" : s.path);
    return Status::Error(ENOENT, "Btrfs on " + what + ": no subvolume " +
                                     (subvol.empty() ? "with the default id " + std::to_string(t->default_id_) : "'" + subvol + "'") +
                                     " (subvolumes: " + names + ")");
  }
  t->slots_.push_back(shown);
  // The shown root must be readable now, not at the first lookup.
  VDKIT_RETURN_IF_ERROR(t->stat(t->root_ino()).status());
  t->free_space_ = make_btrfs_free_space(*t->vol_);
  return t;
}

uint64_t BtrfsTree::root_ino() const { return slots_[0]->root_dirid; }

std::string BtrfsTree::describe() const {
  const Subvolume& s = *slots_[0];
  return "btrfs on " + vol_->what() + " (subvolume " + std::to_string(s.id) + " " + (s.path.empty() ? "/" : s.path) + ")";
}

std::vector<std::string> BtrfsTree::warnings() const {
  std::vector<std::string> w;
  if (vol_->super().log_root)
    w.push_back("Btrfs on " + vol_->what() + " has a log tree that needs replay: what is shown is the state before "
                "replay (writes need --kernel, whose mount replays it into the overlay)");
  return w;
}

Result<BtrfsTree::Loc> BtrfsTree::decode(uint64_t ino) const {
  uint64_t slot = ino >> kSlotShift;
  if (slot >= slots_.size()) return Status::Error(ENOENT, "no inode " + std::to_string(ino) + " on " + describe());
  return Loc{slots_[slot], ino & ((uint64_t{1} << kSlotShift) - 1)};
}

Result<uint64_t> BtrfsTree::encode(const Subvolume& sv, uint64_t ino) {
  if (ino >> kSlotShift)
    return Status::Unsupported(describe() + ": inode number " + std::to_string(ino) + " of subvolume " +
                               std::to_string(sv.id) + " is too large to show");
  auto it = std::find(slots_.begin(), slots_.end(), &sv);
  uint64_t slot = static_cast<uint64_t>(it - slots_.begin());
  if (it == slots_.end()) {
    if (slots_.size() >= (uint64_t{1} << (64 - kSlotShift))) return Status::Unsupported("too many subvolumes shown");
    slots_.push_back(&sv);
  }
  return slot << kSlotShift | ino;
}

Result<uint64_t> BtrfsTree::target_of(const Subvolume& in, const Key& loc) {
  if (loc.type == kInodeItem) return encode(in, loc.objectid);
  if (loc.type == kRootItem) {
    // A subvolume below this one; in a snapshot, an entry for a subvolume of the original is an empty directory.
    const Subvolume* sub = find_subvolume_by_id(subvols_, loc.objectid);
    if (sub && sub->parent_id == in.id) return encode(*sub, sub->root_dirid);
    return encode(in, kEmptySubvolDirObjectid);
  }
  return Status::Corrupt(describe() + ": directory entry points at key " + loc.str());
}

Result<std::vector<uint8_t>> BtrfsTree::inode_item(const Loc& l) {
  VDKIT_ASSIGN_OR_RETURN(auto item, vol_->find(l.sv->root, {l.ino, kInodeItem, 0}));
  if (!item) return Status::Error(ENOENT, describe() + ": no inode " + std::to_string(l.ino) + " in subvolume " + std::to_string(l.sv->id));
  if (item->size() < inode::kItemBytes)
    return Status::Corrupt(describe() + ": inode " + std::to_string(l.ino) + " item of " + std::to_string(item->size()) + " bytes");
  return std::move(*item);
}

Result<TreeStat> BtrfsTree::stat(uint64_t ino) {
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(ino));
  TreeStat st;
  st.ino = ino;
  if (l.ino == kEmptySubvolDirObjectid) {  // the kernel shows such an entry as an empty directory
    st.mode = S_IFDIR | 0755;
    st.nlink = 1;
    return st;
  }
  VDKIT_ASSIGN_OR_RETURN(auto d, inode_item(l));
  const uint8_t* p = d.data();
  st.mode = load_le32(p + inode::kMode);
  st.uid = load_le32(p + inode::kUid);
  st.gid = load_le32(p + inode::kGid);
  st.nlink = load_le32(p + inode::kNlink);
  st.size = load_le64(p + inode::kSize);
  st.blocks = load_le64(p + inode::kNbytes) / 512;
  uint64_t rdev = load_le64(p + inode::kRdev);  // the kernel's dev_t: major << 20 | minor
  st.rdev = makedev(static_cast<unsigned>(rdev >> 20), static_cast<unsigned>(rdev & 0xfffff));
  st.atime = load_time(p + inode::kAtime);
  st.mtime = load_time(p + inode::kMtime);
  st.ctime = load_time(p + inode::kCtime);
  if (S_ISDIR(st.mode)) st.nlink = 1;  // Btrfs keeps 1 for directories, as the kernel shows
  return st;
}

Result<std::vector<uint8_t>> BtrfsTree::dir_items(const Loc& dir, uint8_t type, std::string_view name) {
  VDKIT_ASSIGN_OR_RETURN(auto item, vol_->find(dir.sv->root, {dir.ino, type, Checksum::name_hash(name)}));
  if (!item) return std::vector<uint8_t>();
  return std::move(*item);
}

Result<uint64_t> BtrfsTree::lookup(uint64_t dir_ino, std::string_view name) {
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(dir_ino));
  if (l.ino == kEmptySubvolDirObjectid) return Status::Error(ENOENT, std::string(name) + " not found");
  VDKIT_ASSIGN_OR_RETURN(auto ist, stat(dir_ino));
  if (!S_ISDIR(ist.mode)) return Status::Error(ENOTDIR, describe() + ": inode " + std::to_string(dir_ino) + " is not a directory");
  VDKIT_ASSIGN_OR_RETURN(auto d, dir_items(l, kDirItem, name));
  std::optional<Key> found;
  VDKIT_RETURN_IF_ERROR(for_each_dir_item(d, describe(), [&](const DirItem& it) {
    if (it.name != name) return true;
    found = it.location;
    return false;
  }));
  if (!found) return Status::Error(ENOENT, "'" + std::string(name) + "' not found in directory " + std::to_string(dir_ino));
  return target_of(*l.sv, *found);
}

Status BtrfsTree::read_dir(uint64_t dir_ino, std::vector<TreeEntry>& out) {
  out.clear();
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(dir_ino));
  if (l.ino == kEmptySubvolDirObjectid) return Status::Ok();
  VDKIT_ASSIGN_OR_RETURN(auto ist, stat(dir_ino));
  if (!S_ISDIR(ist.mode)) return Status::Error(ENOTDIR, describe() + ": inode " + std::to_string(dir_ino) + " is not a directory");
  std::vector<std::pair<Key, std::pair<std::string, uint8_t>>> raw;
  // DIR_INDEX items, one entry each, in creation order: what readdir shows.
  VDKIT_RETURN_IF_ERROR(vol_->scan(l.sv->root, {l.ino, kDirIndex, 0}, {l.ino, kDirIndex, ~0ull},
                                   [&](const Key&, std::span<const uint8_t> d) -> Result<bool> {
                                     if (raw.size() >= kMaxDirEntries)
                                       return Status::Corrupt(describe() + ": directory " + std::to_string(l.ino) +
                                                              " has more than " + std::to_string(kMaxDirEntries) + " entries");
                                     VDKIT_RETURN_IF_ERROR(for_each_dir_item(d, describe(), [&](const DirItem& it) {
                                       raw.push_back({it.location, {std::string(it.name), it.type}});
                                       return true;
                                     }));
                                     return true;
                                   }));
  for (auto& [loc, nt] : raw) {
    if (nt.first == "." || nt.first == ".." || nt.first.find('/') != std::string::npos)
      return Status::Corrupt(describe() + ": directory " + std::to_string(l.ino) + " holds the name '" + nt.first + "'");
    VDKIT_ASSIGN_OR_RETURN(uint64_t ino, target_of(*l.sv, loc));
    out.push_back({std::move(nt.first), ino, loc.type == kRootItem ? S_IFDIR : type_bits(nt.second)});
  }
  return Status::Ok();
}

Status BtrfsTree::read_extent(const Loc& l, const Key& k, std::span<const uint8_t> fe, uint64_t pos,
                              std::span<uint8_t> out) {
  std::string what = describe() + ": inode " + std::to_string(l.ino) + " extent at file offset " + std::to_string(k.offset);
  uint8_t type = fe[fextent::kType], comp = fe[fextent::kCompression];
  if (fe[fextent::kEncryption] || load_le16(fe.data() + fextent::kOtherEncoding))
    return Status::Unsupported(what + " is encrypted or encoded");
  uint64_t rel = pos - k.offset;  // within the extent's file range
  if (type == kExtentInline) {
    std::span<const uint8_t> data = fe.subspan(fextent::kInlineData);
    uint64_t ram = load_le64(fe.data() + fextent::kRamBytes);
    std::vector<uint8_t> plain;
    if (comp != kCompressNone) {
      if (ram > vol_->super().sectorsize) return Status::Corrupt(what + ": inline ram_bytes " + std::to_string(ram));
      plain.resize(ram);
      VDKIT_RETURN_IF_ERROR(decompress(comp, data, plain, vol_->super().sectorsize, what));
      data = plain;
    }
    std::fill(out.begin(), out.end(), 0);
    if (rel < data.size()) std::copy_n(data.data() + rel, std::min<uint64_t>(out.size(), data.size() - rel), out.data());
    return Status::Ok();
  }
  uint64_t disk = load_le64(fe.data() + fextent::kDiskBytenr), disk_len = load_le64(fe.data() + fextent::kDiskNumBytes);
  uint64_t off = load_le64(fe.data() + fextent::kOffset);
  if (type == kExtentPrealloc || disk == 0) {  // unwritten, or an explicit hole
    std::fill(out.begin(), out.end(), 0);
    return Status::Ok();
  }
  auto in_extent = checked_add(off, rel);
  if (comp == kCompressNone) {
    auto start = in_extent ? checked_add(disk, *in_extent) : std::nullopt;
    if (!start || *in_extent + out.size() > disk_len)
      return Status::Corrupt(what + ": reads past its disk extent of " + std::to_string(disk_len) + " bytes");
    return vol_->read_logical(*start, out);
  }
  uint64_t ram = load_le64(fe.data() + fextent::kRamBytes);
  if (ram > kMaxUncompressed || disk_len > kMaxUncompressed || disk_len == 0)
    return Status::Corrupt(what + ": compressed extent of " + std::to_string(disk_len) + " bytes holding " +
                           std::to_string(ram) + " (Btrfs compresses at most 128 KiB at a time)");
  if (cached_extent_ != disk || cached_compression_ != comp || cached_data_.size() != ram) {
    std::vector<uint8_t> raw(disk_len);
    VDKIT_RETURN_IF_ERROR(vol_->read_logical(disk, raw));
    cached_extent_ = ~0ull;
    cached_data_.assign(ram, 0);
    VDKIT_RETURN_IF_ERROR(decompress(comp, raw, cached_data_, vol_->super().sectorsize, what));
    cached_extent_ = disk;
    cached_compression_ = comp;
  }
  std::fill(out.begin(), out.end(), 0);
  if (in_extent && *in_extent < ram)
    std::copy_n(cached_data_.data() + *in_extent, std::min<uint64_t>(out.size(), ram - *in_extent), out.data());
  return Status::Ok();
}

Result<size_t> BtrfsTree::read(uint64_t ino, uint64_t offset, std::span<uint8_t> buf) {
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(ino));
  VDKIT_ASSIGN_OR_RETURN(TreeStat st, stat(ino));
  if (S_ISDIR(st.mode)) return Status::Error(EISDIR, describe() + ": inode " + std::to_string(ino) + " is a directory");
  if (offset >= st.size) return size_t{0};
  size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), st.size - offset));
  size_t done = 0;
  while (done < want) {
    uint64_t pos = offset + done;
    std::span<uint8_t> rest = buf.subspan(done, want - done);
    VDKIT_ASSIGN_OR_RETURN(auto hit, vol_->find_last_le(l.sv->root, {l.ino, kExtentData, pos}));
    uint64_t covered_to = 0;  // the extent's end in the file, when it covers pos
    if (hit && hit->first.objectid == l.ino && hit->first.type == kExtentData) {
      const auto& fe = hit->second;
      if (fe.size() < fextent::kInlineData) return Status::Corrupt(describe() + ": short file extent item " + hit->first.str());
      uint64_t len;
      if (fe[fextent::kType] == kExtentInline) {
        len = fe[fextent::kCompression] ? load_le64(fe.data() + fextent::kRamBytes) : fe.size() - fextent::kInlineData;
      } else {
        if (fe.size() < fextent::kRegularBytes) return Status::Corrupt(describe() + ": short file extent item " + hit->first.str());
        if (fe[fextent::kType] != kExtentRegular && fe[fextent::kType] != kExtentPrealloc)
          return Status::Corrupt(describe() + ": file extent type " + std::to_string(fe[fextent::kType]));
        len = load_le64(fe.data() + fextent::kNumBytes);
      }
      auto end = checked_add(hit->first.offset, len);
      if (!end) return Status::Corrupt(describe() + ": file extent " + hit->first.str() + " overflows");
      if (*end > pos) covered_to = *end;
      if (covered_to) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(rest.size(), covered_to - pos));
        VDKIT_RETURN_IF_ERROR(read_extent(l, hit->first, fe, pos, rest.first(n)));
        done += n;
        continue;
      }
    }
    // A hole (no-holes, or past the last extent): zeros up to the next extent.
    uint64_t next = offset + want;
    VDKIT_RETURN_IF_ERROR(vol_->scan(l.sv->root, {l.ino, kExtentData, pos + 1}, {l.ino, kExtentData, ~0ull},
                                     [&](const Key& k, std::span<const uint8_t>) -> Result<bool> {
                                       next = std::min(next, k.offset);
                                       return false;
                                     }));
    size_t n = static_cast<size_t>(std::min<uint64_t>(rest.size(), next - pos));
    std::fill_n(rest.data(), n, 0);
    done += n;
  }
  return done;
}

Result<std::string> BtrfsTree::read_link(uint64_t ino) {
  VDKIT_ASSIGN_OR_RETURN(TreeStat st, stat(ino));
  if (!S_ISLNK(st.mode)) return Status::Error(EINVAL, describe() + ": inode " + std::to_string(ino) + " is not a symbolic link");
  if (st.size > kMaxSymlinkBytes)
    return Status::Corrupt(describe() + ": symbolic link " + std::to_string(ino) + " of " + std::to_string(st.size) + " bytes");
  std::string s(st.size, '\0');
  VDKIT_ASSIGN_OR_RETURN(size_t n, read(ino, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), s.size())));
  s.resize(n);
  return s;
}

Status BtrfsTree::list_xattrs(uint64_t ino, std::vector<std::string>& out) {
  out.clear();
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(ino));
  if (l.ino == kEmptySubvolDirObjectid) return Status::Ok();
  return vol_->scan(l.sv->root, {l.ino, kXattrItem, 0}, {l.ino, kXattrItem, ~0ull},
                    [&](const Key&, std::span<const uint8_t> d) -> Result<bool> {
                      VDKIT_RETURN_IF_ERROR(for_each_dir_item(d, describe(), [&](const DirItem& it) {
                        out.emplace_back(it.name);
                        return true;
                      }));
                      if (out.size() > kMaxXattrs) return Status::Corrupt(describe() + ": too many xattrs on " + std::to_string(ino));
                      return true;
                    });
}

Result<std::string> BtrfsTree::get_xattr(uint64_t ino, const std::string& name) {
  VDKIT_ASSIGN_OR_RETURN(Loc l, decode(ino));
  std::optional<std::string> value;
  if (l.ino != kEmptySubvolDirObjectid) {
    VDKIT_ASSIGN_OR_RETURN(auto d, dir_items(l, kXattrItem, name));
    VDKIT_RETURN_IF_ERROR(for_each_dir_item(d, describe(), [&](const DirItem& it) {
      if (it.name != name) return true;
      value = std::string(it.data);
      return false;
    }));
  }
  if (!value) return Status::Error(ENODATA, "no extended attribute " + name);
  return *value;
}

}  // namespace vdkit::guestfs::btrfs
