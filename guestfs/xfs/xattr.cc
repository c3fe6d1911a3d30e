// XfsTree extended attributes: shortform (in the inode), leaf blocks and da-node trees in the attribute fork, and
// remote values. Names get their namespace from the entry flags: none = "user.", ROOT = "trusted.", SECURE =
// "security.". XFS's own ACL attributes (trusted SGI_ACL_*) and parent pointers are not shown, as the kernel does not
// show them under those names either.
#include <algorithm>
#include <cstring>
#include <unordered_set>

#include "blockcore/base/bytes.h"
#include "blockcore/base/checked.h"
#include "guestfs/xfs/xfs_tree.h"

namespace vdkit::guestfs::xfs {

namespace {

constexpr uint8_t kAttrLocal = 0x1, kAttrRoot = 0x2, kAttrSecure = 0x4, kAttrParent = 0x8, kAttrIncomplete = 0x80;
constexpr size_t kAttrLeafHeaderV4 = 32, kAttrLeafHeaderV5 = 80;
// Attributes one inode may hold before the reader refuses it, and the largest value XFS allows.
constexpr size_t kMaxAttrs = 1u << 16;
constexpr uint32_t kMaxAttrValue = 64u << 10;

// "user.name" for the entry, or "" for one that is not shown.
std::string full_name(uint8_t flags, std::string_view name) {
  if (flags & (kAttrIncomplete | kAttrParent)) return {};
  if (flags & kAttrSecure) return "security." + std::string(name);
  if (flags & kAttrRoot) {
    if (name == "SGI_ACL_FILE" || name == "SGI_ACL_DEFAULT") return {};
    return "trusted." + std::string(name);
  }
  return "user." + std::string(name);
}

struct Attr {
  std::string name;
  std::string value;
  bool remote = false;
  uint32_t valueblk = 0, valuelen = 0;
};

}  // namespace

// Every attribute of an inode, with local values filled in and remote ones described.
static Status collect_attrs(XfsTree& t, const Inode& in, std::vector<Attr>& out,
                            std::shared_ptr<const ExtentList>* extents_out) {
  const Superblock& sb = t.superblock();
  const std::string who = "attribute fork of inode " + std::to_string(in.ino);
  auto bad = [&](const std::string& why) { return Status::Corrupt(t.describe() + ": " + who + ": " + why); };
  if (in.attr_fork_size == 0) return Status::Ok();
  if (in.aformat == ForkFormat::kLocal) {
    const auto f = in.attr_fork();
    if (f.size() < 4) return bad("too small");
    const size_t totsize = load_be16(f.data()), count = f[2];
    if (totsize < 4 || totsize > f.size()) return bad("totsize " + std::to_string(totsize));
    size_t pos = 4;
    for (size_t i = 0; i < count; ++i) {
      if (pos + 3 > totsize) return bad("entry " + std::to_string(i) + " runs past totsize");
      const size_t namelen = f[pos], valuelen = f[pos + 1];
      const uint8_t flags = f[pos + 2];
      if (pos + 3 + namelen + valuelen > totsize) return bad("entry " + std::to_string(i) + " runs past totsize");
      Attr a;
      a.name = full_name(flags, std::string_view(reinterpret_cast<const char*>(f.data() + pos + 3), namelen));
      a.value.assign(reinterpret_cast<const char*>(f.data() + pos + 3 + namelen), valuelen);
      if (!a.name.empty()) out.push_back(std::move(a));
      pos += 3 + namelen + valuelen;
    }
    return Status::Ok();
  }
  VDKIT_ASSIGN_OR_RETURN(auto extents, t.fork_extents(in, true));
  *extents_out = extents;
  if (extents->empty()) return Status::Ok();
  const uint32_t bs = sb.block_size;
  std::unordered_set<uint64_t> visited;
  std::vector<std::pair<uint64_t, int>> todo = {{0, kMaxBtreeLevels}};  // attr-fork block, levels allowed below
  while (!todo.empty()) {
    auto [blk, depth] = todo.back();
    todo.pop_back();
    const std::string what = "attribute block " + std::to_string(blk) + " of inode " + std::to_string(in.ino);
    if (!visited.insert(blk).second) return bad("block " + std::to_string(blk) + " is reached twice (a cycle)");
    if (depth <= 0) return bad("the attribute tree is deeper than " + std::to_string(kMaxBtreeLevels) + " levels");
    VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> b, t.read_mapped(*extents, blk, bs, what));
    const uint16_t magic = load_be16(b.data() + 8);
    if (sb.crc()) {
      auto it = std::upper_bound(extents->begin(), extents->end(), blk,
                                 [](uint64_t v, const Extent& e) { return v < e.startoff; });
      const Extent& e = *std::prev(it);
      VDKIT_ASSIGN_OR_RETURN(uint64_t off, t.fsb_to_offset(e.startblock + (blk - e.startoff), 1, what));
      if (magic != kAttr3LeafMagic && magic != kDa3NodeMagic) return bad(what + ": bad magic " + hex(magic));
      VDKIT_RETURN_IF_ERROR(t.check_v5_block(b, kDa3CrcOffset, 16, off / 512, 32, 48, in.ino, 8, what));
    } else if (magic != kAttrLeafMagic && magic != kDaNodeMagic) {
      return bad(what + ": bad magic " + hex(magic));
    }
    const bool node = magic == kDaNodeMagic || magic == kDa3NodeMagic;
    const size_t hdr = node ? (sb.crc() ? kDaHeaderV5 : kDaHeaderV4) : (sb.crc() ? kAttrLeafHeaderV5 : kAttrLeafHeaderV4);
    const size_t count = load_be16(b.data() + (sb.crc() ? 56 : 12));
    if (node) {
      // Entries: hashval, before (the child's block in the attribute fork).
      if (count == 0 || count > (bs - hdr) / 8) return bad(what + ": " + std::to_string(count) + " node entries");
      for (size_t i = count; i-- > 0;) todo.emplace_back(load_be32(b.data() + hdr + i * 8 + 4), depth - 1);
      continue;
    }
    if (count > (bs - hdr) / 8) return bad(what + ": " + std::to_string(count) + " leaf entries");
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* e = b.data() + hdr + i * 8;
      const size_t idx = load_be16(e + 4);
      const uint8_t flags = e[6];
      Attr a;
      if (flags & kAttrLocal) {  // valuelen u16, namelen u8, name, value
        if (idx + 3 > bs) return bad(what + ": entry " + std::to_string(i) + " points outside the block");
        const size_t valuelen = load_be16(b.data() + idx), namelen = b[idx + 2];
        if (idx + 3 + namelen + valuelen > bs) return bad(what + ": entry " + std::to_string(i) + " runs past the block");
        a.name = full_name(flags, std::string_view(reinterpret_cast<const char*>(b.data() + idx + 3), namelen));
        a.value.assign(reinterpret_cast<const char*>(b.data() + idx + 3 + namelen), valuelen);
      } else {  // valueblk u32, valuelen u32, namelen u8, name
        if (idx + 9 > bs) return bad(what + ": entry " + std::to_string(i) + " points outside the block");
        const size_t namelen = b[idx + 8];
        if (idx + 9 + namelen > bs) return bad(what + ": entry " + std::to_string(i) + " runs past the block");
        a.name = full_name(flags, std::string_view(reinterpret_cast<const char*>(b.data() + idx + 9), namelen));
        a.remote = true;
        a.valueblk = load_be32(b.data() + idx);
        a.valuelen = load_be32(b.data() + idx + 4);
      }
      if (a.name.empty()) continue;
      if (out.size() >= kMaxAttrs) return bad("more than " + std::to_string(kMaxAttrs) + " attributes");
      out.push_back(std::move(a));
    }
  }
  return Status::Ok();
}

static Result<std::string> remote_value(XfsTree& t, const Inode& in, const ExtentList& extents, const Attr& a) {
  const Superblock& sb = t.superblock();
  const std::string what = "remote value of attribute " + a.name + " of inode " + std::to_string(in.ino);
  if (a.valuelen > kMaxAttrValue)
    return Status::Corrupt(t.describe() + ": " + what + ": " + std::to_string(a.valuelen) + " bytes");
  const size_t per_block = sb.crc() ? sb.block_size - kAttr3RemoteHeader : sb.block_size;
  std::string value;
  for (uint64_t blk = a.valueblk; value.size() < a.valuelen; ++blk) {
    VDKIT_ASSIGN_OR_RETURN(std::vector<uint8_t> b, t.read_mapped(extents, blk, sb.block_size, what));
    const size_t want = std::min<size_t>(per_block, a.valuelen - value.size());
    if (sb.crc()) {
      if (load_be32(b.data()) != kAttr3RemoteMagic) return Status::Corrupt(t.describe() + ": " + what + ": bad magic");
      if (!crc_ok(b, 12)) return Status::Corrupt(t.describe() + ": " + what + ": CRC mismatch");
      if (load_be32(b.data() + 4) != value.size() || load_be32(b.data() + 8) != want || load_be64(b.data() + 32) != in.ino)
        return Status::Corrupt(t.describe() + ": " + what + ": header does not match the value");
      value.append(reinterpret_cast<const char*>(b.data() + kAttr3RemoteHeader), want);
    } else {
      value.append(reinterpret_cast<const char*>(b.data()), want);
    }
  }
  return value;
}

Status XfsTree::list_xattrs(uint64_t ino, std::vector<std::string>& out) {
  out.clear();
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  std::vector<Attr> attrs;
  std::shared_ptr<const ExtentList> extents;
  VDKIT_RETURN_IF_ERROR(collect_attrs(*this, in, attrs, &extents));
  for (auto& a : attrs) out.push_back(std::move(a.name));
  return Status::Ok();
}

Result<std::string> XfsTree::get_xattr(uint64_t ino, const std::string& name) {
  VDKIT_ASSIGN_OR_RETURN(Inode in, read_inode(ino));
  std::vector<Attr> attrs;
  std::shared_ptr<const ExtentList> extents;
  VDKIT_RETURN_IF_ERROR(collect_attrs(*this, in, attrs, &extents));
  for (const auto& a : attrs) {
    if (a.name != name) continue;
    if (!a.remote) return a.value;
    return remote_value(*this, in, *extents, a);
  }
  return Status::Error(ENODATA, describe() + ": inode " + std::to_string(ino) + " has no attribute " + name);
}

}  // namespace vdkit::guestfs::xfs
