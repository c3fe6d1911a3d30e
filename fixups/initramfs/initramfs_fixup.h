// The initramfs fixup: for every kernel a boot entry boots whose initramfs lacks the virtio disk drivers, a driver
// segment appended to that initramfs, and the guest's own initramfs config told to keep them.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "fixups/guest_fs.h"
#include "fixups/initramfs/segment.h"
#include "fixups/inspect.h"
#include "fixups/options.h"

namespace vdkit::fixups {

// Slack kept free on /boot beyond what the new images take (metadata, the journal, a later kernel update).
inline constexpr uint64_t kInitramfsSpareBytes = 4u << 20;

struct InitramfsImageChange {
  std::string path;  // /boot/initrd.img-6.1.0-13-amd64
  std::string kver;
  std::string before, after;
  std::string summary;  // what --dry-run shows in place of a diff
};

// A config file of the guest: edit(current) gives the new content ("" in for a file that does not exist yet).
struct InitramfsConfigEdit {
  std::string path;
  std::function<std::string(const std::string&)> edit;
};

struct InitramfsNote {
  std::string code, message, command;
};

struct InitramfsFixupPlan {
  std::vector<InitramfsImageChange> images;   // written after every config edit
  std::vector<InitramfsConfigEdit> configs;
  std::vector<std::string> cmdline_append;    // dracut 004: rdloaddriver= for the boot entries
  std::vector<InitramfsNote> notes;
  std::set<std::string> handled_kernels;      // their "lacks virtio" warning is replaced by a note here
};

// The drivers a virtio-blk boot disk needs in the initramfs (virtio_scsi joins for a virtio-scsi disk).
inline const std::vector<std::string>& virtio_blk_drivers() {
  static const std::vector<std::string> d{"virtio_pci", "virtio_blk"};
  return d;
}

// Plans the initramfs fixup; reads only. depmod runs the host's depmod (run_depmod when empty).
InitramfsFixupPlan plan_initramfs(GuestFs& fs, const Inspection& in, const FixupOptions& options,
                                  const DepmodFn& depmod = {});

// The guest config edits, exposed for their tests: /etc/initramfs-tools/modules, a dracut.conf.d file,
// /etc/modprobe.conf (RHEL 5). Each is idempotent.
std::string add_initramfs_tools_modules(const std::string& text, const std::vector<std::string>& drivers);
std::string dracut_conf_with_drivers(const std::string& text, const std::vector<std::string>& drivers);
std::string add_scsi_hostadapter_aliases(const std::string& text, const std::vector<std::string>& drivers);

}  // namespace vdkit::fixups
