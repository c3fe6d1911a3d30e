// Btrfs subvolumes from the root tree.
#include "guestfs/btrfs/subvolumes.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

#include "guestfs/btrfs/checksum.h"

namespace vdkit::guestfs::btrfs {

namespace {

// The path of inode `ino` inside subvolume `sv`, from INODE_REF items up to its root directory.
Result<std::string> path_in_subvolume(BtrfsVolume& vol, const Subvolume& sv, uint64_t ino) {
  std::string path;
  for (int depth = 0; ino != sv.root_dirid; ++depth) {
    if (depth > 4096) return Status::Corrupt("Btrfs on " + vol.what() + ": directory loop above inode " + std::to_string(ino));
    std::optional<std::pair<uint64_t, std::string>> up;
    VDKIT_RETURN_IF_ERROR(vol.scan(sv.root, {ino, kInodeRef, 0}, {ino, kInodeRef, ~0ull},
                                   [&](const Key& k, std::span<const uint8_t> d) -> Result<bool> {
                                     if (d.size() < iref::kHeaderBytes) return Status::Corrupt("short INODE_REF");
                                     size_t n = load_le16(d.data() + iref::kNameLen);
                                     if (n > d.size() - iref::kHeaderBytes) return Status::Corrupt("INODE_REF name past its item");
                                     up = {k.offset, std::string(reinterpret_cast<const char*>(d.data()) + iref::kHeaderBytes, n)};
                                     return false;
                                   }));
    if (!up) return Status::Corrupt("Btrfs on " + vol.what() + ": inode " + std::to_string(ino) + " of subvolume " +
                                    std::to_string(sv.id) + " has no INODE_REF");
    path = up->second + (path.empty() ? "" : "/" + path);
    if (up->first == ino) return Status::Corrupt("Btrfs on " + vol.what() + ": inode " + std::to_string(ino) + " is its own parent");
    ino = up->first;
  }
  return path;
}

}  // namespace

Result<std::vector<Subvolume>> list_subvolumes(BtrfsVolume& vol) {
  std::map<uint64_t, Subvolume> by_id;
  std::map<uint64_t, std::pair<uint64_t, std::pair<uint64_t, std::string>>> backrefs;  // id -> parent, (dirid, name)
  Status st = vol.scan(vol.root_tree(), {kFsTreeObjectid, 0, 0}, {kLastFreeObjectid, 0xff, ~0ull},
                       [&](const Key& k, std::span<const uint8_t> d) -> Result<bool> {
                         if (!is_fs_tree(k.objectid)) return true;
                         if (k.type == kRootItem) {
                           if (d.size() < root::kLegacyBytes)
                             return Status::Corrupt("root item " + k.str() + " of " + std::to_string(d.size()) + " bytes");
                           if (by_id.size() >= kMaxSubvolumes)
                             return Status::Corrupt("more than " + std::to_string(kMaxSubvolumes) + " subvolumes");
                           Subvolume s;
                           s.id = k.objectid;
                           s.generation = load_le64(d.data() + root::kGeneration);
                           s.root = {load_le64(d.data() + root::kBytenr), d[root::kLevel], s.generation, k.objectid};
                           s.root_dirid = load_le64(d.data() + root::kRootDirid);
                           s.flags = load_le64(d.data() + root::kFlags);
                           s.readonly = s.flags & root::kFlagRdonly;
                           if (d.size() >= root::kItemBytes) {
                             s.uuid = uuid_string(d.data() + root::kUuid);
                             static const uint8_t kZero[16] = {};
                             if (std::memcmp(d.data() + root::kParentUuid, kZero, 16) != 0)
                               s.parent_uuid = uuid_string(d.data() + root::kParentUuid);
                             s.otime = static_cast<int64_t>(load_le64(d.data() + root::kOtime));
                           }
                           // A later ROOT_ITEM of the same tree (higher offset) is the current one.
                           by_id[k.objectid] = std::move(s);
                         } else if (k.type == kRootBackref) {
                           if (d.size() < rootref::kHeaderBytes) return Status::Corrupt("short ROOT_BACKREF " + k.str());
                           size_t n = load_le16(d.data() + rootref::kNameLen);
                           if (n > d.size() - rootref::kHeaderBytes) return Status::Corrupt("ROOT_BACKREF name past its item");
                           backrefs[k.objectid] = {k.offset, {load_le64(d.data() + rootref::kDirid),
                                                              std::string(reinterpret_cast<const char*>(d.data()) +
                                                                              rootref::kHeaderBytes, n)}};
                         }
                         return true;
                       });
  VDKIT_RETURN_IF_ERROR(st.Context("listing the subvolumes"));
  if (!by_id.count(kFsTreeObjectid)) return Status::Corrupt("Btrfs on " + vol.what() + ": no top-level subvolume (tree 5)");
  // Paths: parent path + directory inside the parent + name; parents first (ids grow with creation, but a snapshot
  // can be moved under a younger subvolume, so resolve on demand).
  std::map<uint64_t, int> state;  // 1 resolving, 2 done
  std::function<Status(uint64_t, size_t)> resolve = [&](uint64_t id, size_t depth) -> Status {
    if (state[id] == 2) return Status::Ok();
    if (depth > kMaxSubvolumeDepth)
      return Status::Corrupt("Btrfs on " + vol.what() + ": subvolume " + std::to_string(id) + " is nested more than " +
                             std::to_string(kMaxSubvolumeDepth) + " deep");
    if (state[id] == 1) return Status::Corrupt("Btrfs on " + vol.what() + ": subvolume " + std::to_string(id) + " is inside itself");
    state[id] = 1;
    Subvolume& s = by_id.at(id);
    auto br = backrefs.find(id);
    if (id != kFsTreeObjectid && br != backrefs.end() && by_id.count(br->second.first)) {
      uint64_t parent = br->second.first;
      VDKIT_RETURN_IF_ERROR(resolve(parent, depth + 1));
      Subvolume& p = by_id.at(parent);
      VDKIT_ASSIGN_OR_RETURN(std::string dir, path_in_subvolume(vol, p, br->second.second.first));
      s.parent_id = parent;
      std::string base = p.path;
      if (!dir.empty()) base += (base.empty() ? "" : "/") + dir;
      s.path = base + (base.empty() ? "" : "/") + br->second.second.second;
    }
    state[id] = 2;
    return Status::Ok();
  };
  std::vector<Subvolume> out;
  for (auto& [id, s] : by_id) {
    if (id != kFsTreeObjectid && !backrefs.count(id)) continue;  // deleted or orphaned
    VDKIT_RETURN_IF_ERROR(resolve(id, 0));
  }
  for (auto& [id, s] : by_id)
    if (id == kFsTreeObjectid || backrefs.count(id)) out.push_back(s);
  return out;
}

Result<uint64_t> default_subvolume_id(BtrfsVolume& vol) {
  const std::string name = "default";
  Key k{kRootTreeDirObjectid, kDirItem, Checksum::name_hash(name)};
  VDKIT_ASSIGN_OR_RETURN(auto item, vol.find(vol.root_tree(), k));
  if (!item) return kFsTreeObjectid;
  const auto& d = *item;
  for (size_t off = 0; off + dir::kHeaderBytes <= d.size();) {
    size_t nl = load_le16(d.data() + off + dir::kNameLen), dl = load_le16(d.data() + off + dir::kDataLen);
    if (nl + dl > d.size() - off - dir::kHeaderBytes) break;
    if (std::string_view(reinterpret_cast<const char*>(d.data()) + off + dir::kHeaderBytes, nl) == name)
      return Key::load(d.data() + off + dir::kLocation).objectid;
    off += dir::kHeaderBytes + nl + dl;
  }
  return kFsTreeObjectid;
}

const Subvolume* find_subvolume_by_id(const std::vector<Subvolume>& all, uint64_t id) {
  for (const auto& s : all)
    if (s.id == id) return &s;
  return nullptr;
}

const Subvolume* find_subvolume(const std::vector<Subvolume>& all, const std::string& id_or_path) {
  if (!id_or_path.empty() && std::all_of(id_or_path.begin(), id_or_path.end(), ::isdigit) && id_or_path.size() < 20)
    return find_subvolume_by_id(all, std::stoull(id_or_path));
  std::string p = id_or_path;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  for (const auto& s : all)
    if (s.path == p) return &s;
  return nullptr;
}

}  // namespace vdkit::guestfs::btrfs

namespace vdkit::guestfs::btrfs {
Result<TreeRoot> find_tree_root(BtrfsVolume& vol, uint64_t id) {
  VDKIT_ASSIGN_OR_RETURN(auto r, vol.find_last_le(vol.root_tree(), {id, kRootItem, ~0ull}));
  if (!r || r->first.objectid != id || r->first.type != kRootItem)
    return Status::Corrupt("Btrfs on " + vol.what() + ": no root item for tree " + std::to_string(id));
  const auto& d = r->second;
  if (d.size() < root::kLegacyBytes) return Status::Corrupt("Btrfs on " + vol.what() + ": short root item for tree " + std::to_string(id));
  return TreeRoot{load_le64(d.data() + root::kBytenr), d[root::kLevel], load_le64(d.data() + root::kGeneration), id};
}
}  // namespace vdkit::guestfs::btrfs
