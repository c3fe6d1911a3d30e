// Btrfs guests: the booted subvolume, told by what boots (the kernel command line, then fstab, then the default
// subvolume), never by its name; SUSE's root is a snapper snapshot and is found the same way.
#include "fixups/btrfs_root.h"

#include <algorithm>

#include "fixups/rules/fstab.h"
#include "guestfs/btrfs/btrfs_tree.h"
#include "guestfs/file_tree.h"
#include "guestfs/kernel_mount.h"

namespace vdkit::fixups {

namespace {

using guestfs::btrfs::BtrfsTree;
using guestfs::btrfs::Subvolume;

constexpr size_t kMaxBootConfigBytes = 4u << 20;

// Boot loader configs that carry kernel command lines, in the order they are trusted.
std::vector<std::string> boot_configs(GuestFs& fs) {
  std::vector<std::string> files = {"/boot/grub2/grub.cfg", "/boot/grub/grub.cfg", "/boot/grub/menu.lst",
                                    "/boot/grub/grub.conf", "/boot/extlinux/extlinux.conf",
                                    "/boot/syslinux/syslinux.cfg", "/etc/default/grub"};
  for (const auto& d : fs.list_dir("/boot/loader/entries")) files.push_back("/boot/loader/entries/" + d);
  return files;
}

std::optional<std::string> rootflags_of(GuestFs& fs, std::string* from) {
  for (const auto& f : boot_configs(fs)) {
    auto text = fs.read_file(f, kMaxBootConfigBytes);
    if (!text.ok()) continue;
    if (auto s = subvol_in_rootflags(*text)) {
      *from = f;
      return s;
    }
  }
  return std::nullopt;
}

std::optional<std::string> fstab_root_subvol(GuestFs& fs, bool* has_fstab) {
  auto text = fs.read_file("/etc/fstab", kMaxBootConfigBytes);
  *has_fstab = text.ok();
  if (!text.ok()) return std::nullopt;
  for (const auto& e : parse_fstab(*text))
    if (e.mount_point == "/") return subvol_in_options(e.options);
  return std::nullopt;
}

bool is_snapshot(const Subvolume& s) {
  return !s.parent_uuid.empty() || s.path.rfind(".snapshots/", 0) == 0 || s.path.find("/.snapshots/") != std::string::npos;
}

}  // namespace

std::optional<std::string> subvol_in_options(std::string_view options) {
  std::optional<std::string> subvol, id;
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t comma = options.find(',', pos);
    std::string_view opt = options.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (opt.rfind("subvol=", 0) == 0) subvol = std::string(opt.substr(7));
    else if (opt.rfind("subvolid=", 0) == 0) id = std::string(opt.substr(9));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return id ? id : subvol;
}

std::optional<std::string> subvol_in_rootflags(std::string_view text) {
  for (size_t pos = text.find("rootflags="); pos != std::string_view::npos; pos = text.find("rootflags=", pos + 1)) {
    // A word of its own: after a blank, a quote or the start.
    if (pos > 0 && !std::isspace(static_cast<unsigned char>(text[pos - 1])) && text[pos - 1] != '"' && text[pos - 1] != '\'')
      continue;
    size_t start = pos + 10, end = start;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != '"' && text[end] != '\'')
      ++end;
    if (auto s = subvol_in_options(text.substr(start, end - start))) return s;
  }
  return std::nullopt;
}

Status describe_btrfs(std::shared_ptr<BlockDevice> view, FsInfo& fs) {
  std::string what = fs.partition ? "partition " + std::to_string(fs.partition) : "the whole disk";
  VDKIT_ASSIGN_OR_RETURN(auto tree, BtrfsTree::open(view, what));
  fs.warnings = tree->warnings();
  fs.needs_replay = tree->volume().super().log_root != 0;
  const auto& all = tree->subvolumes();
  const Subvolume& def = tree->shown();
  std::string chosen, reason;
  {
    auto g = guestfs::make_tree_guest_fs(tree);
    std::string from;
    bool has_fstab = false;
    if (auto s = rootflags_of(*g, &from)) {
      chosen = *s;
      reason = "rootflags on the kernel command line in " + from + " of the default subvolume";
    } else if (auto f = fstab_root_subvol(*g, &has_fstab)) {
      chosen = *f;
      reason = "subvol option of / in /etc/fstab of the default subvolume";
    } else if (has_fstab) {
      chosen = std::to_string(def.id);
      reason = "the default subvolume (it holds /etc/fstab, and nothing names another)";
    }
  }
  if (chosen.empty()) {
    // The default subvolume is not a root (the top level holding @, @home, ...): the subvolume whose own boot
    // configs or fstab name it, else the first one that is not a snapshot and holds /etc/fstab.
    std::string fallback;
    for (const auto& s : all) {
      if (s.id == def.id) continue;
      auto t = BtrfsTree::open(view, what, std::to_string(s.id));
      if (!t.ok()) continue;
      auto g = guestfs::make_tree_guest_fs(*t);
      bool has_fstab = false;
      std::string from;
      auto named = rootflags_of(*g, &from);
      if (!named) named = fstab_root_subvol(*g, &has_fstab);
      else (void)fstab_root_subvol(*g, &has_fstab);
      if (!has_fstab) continue;
      const Subvolume* n = named ? guestfs::btrfs::find_subvolume(all, *named) : nullptr;
      if (n && n->id == s.id) {
        chosen = std::to_string(s.id);
        reason = "subvolume " + s.path + " names itself as the root (" + (from.empty() ? "/etc/fstab" : from) + ")";
        break;
      }
      if (fallback.empty() && !is_snapshot(s)) fallback = std::to_string(s.id);
    }
    if (chosen.empty() && !fallback.empty()) {
      chosen = fallback;
      reason = "the first subvolume that holds /etc/fstab and is not a snapshot";
    }
  }
  const Subvolume* booted = chosen.empty() ? &def : guestfs::btrfs::find_subvolume(all, chosen);
  if (!booted) {
    fs.warnings.push_back("Btrfs on " + what + ": the guest boots subvolume '" + chosen + "' (" + reason +
                          "), which does not exist; showing the default subvolume");
    booted = &def;
    reason = "the default subvolume";
  }
  if (chosen.empty()) reason = "the default subvolume";
  fs.subvolume = std::to_string(booted->id);
  fs.subvolume_reason = reason;
  fs.subvolumes.clear();
  for (const auto& s : all)
    fs.subvolumes.push_back({s.id, s.path, s.id == tree->default_subvolume(), s.id == booted->id, is_snapshot(s), s.readonly});
  return Status::Ok();
}

Result<GuestFsPtr> open_btrfs_guest_fs(std::shared_ptr<BlockDevice> view, const FsInfo& fs, const std::string& what,
                                       bool writable, const OpenGuestOptions& how, std::function<Status()>* closer) {
  const std::string where = fs.partition ? "partition " + std::to_string(fs.partition) : "the whole disk";
  auto tree = BtrfsTree::open(view, where, fs.subvolume);
  if (!tree.ok()) return tree.status().Context("opening " + what);
  if (!writable) return guestfs::make_tree_guest_fs(*tree);
  if (!how.kernel)
    return Status::Error(EROFS, "vdkit writes " + what + " (Btrfs) only through the host kernel: add --kernel (as root)");
  if ((*tree)->volume().super().log_root && !how.replay_log)
    return Status::Error(EROFS, "the Btrfs log tree of " + what +
                                    " needs replay, which the kernel mount would do in the image itself; add "
                                    "--replay-journal to allow that with --in-place (or write to a copy with -o)");
  if (!closer) return Status::Invalid("writing " + what + " through the kernel needs a closer for its mount");
  guestfs::KernelMountOptions ko;
  ko.fs_type = "btrfs";
  // The subvolume the guest boots, by id: its name may be shared by a snapshot's path elsewhere.
  ko.options = {"subvolid=" + std::to_string((*tree)->shown().id)};
  ko.writable = true;
  ko.what = what + " subvolume " + std::to_string((*tree)->shown().id);
  auto km = guestfs::KernelMount::Mount(view, ko);
  if (!km.ok()) return km.status().Context("writing " + what + " through the host kernel (--kernel)");
  std::shared_ptr<guestfs::KernelMount> mount(std::move(*km));
  auto gfs = mount->open_guest_fs();
  if (!gfs.ok()) return gfs.status();
  *closer = [mount] { return mount->Unmount(); };
  return std::move(*gfs);
}

}  // namespace vdkit::fixups
