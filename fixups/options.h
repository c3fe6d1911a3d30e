// The fixup options: one definition and one parser for `vdkit fixup`, `vdkit convert --fixup` and plan-file columns.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "blockcore/base/status.h"
#include "fixups/disk.h"
#include "fixups/rules/net_summary.h"

namespace vdkit::fixups {

// What happens to the guest's network configs.
enum class NetworkMode {
  kDhcp,  // static addresses become DHCP, their default routes are commented out, pinned MACs go (the default)
  kKeep,  // addresses stay as configured; pinned MACs go, NIC names are made to match the virtio NIC
  kNone,  // network configs and NIC naming on the command line are left as they are (udev's pinned-MAC rules still go)
};

struct FixupOptions {
  DeviceNaming naming = DeviceNaming::kUuid;
  NetworkMode network = NetworkMode::kDhcp;
  bool backup = false;  // keep each edited file as PATH.vdkit-orig beside it in the guest
  // Write file systems vdkit cannot write itself (XFS, Btrfs) through the host kernel (guestfs/kernel_mount.*);
  // needs root. Without it such guests are inspected and planned, never written.
  bool kernel = false;
  // --in-place only: replay a journal that needs recovery into the image itself (into the overlay it is always
  // replayed, since the source stays untouched there).
  bool replay_journal = false;
  // Write even where the pre-write consistency checks found a problem.
  bool force = false;
  // Add missing virtio drivers to the guest's initramfs images (--no-initramfs turns it off).
  bool initramfs = true;

  // Whether any network edit is made at all, and what the network rewriters do with addresses.
  bool network_edits() const { return network != NetworkMode::kNone; }
  Addressing addressing() const { return network == NetworkMode::kKeep ? Addressing::kKeep : Addressing::kToDhcp; }
};

// One option as the CLI (--NAME VALUE, --NAME for flags) and a plan file's columns (NAME=VALUE) give it.
struct FixupOptionSpec {
  std::string name;                 // "network"
  std::vector<std::string> values;  // accepted values; empty for a flag ("true"/"false" in a plan file)
  std::string help;                 // one line for --help
};

// Every fixup option, in the order --help lists them. Aliases (no-network = network none) are included.
const std::vector<FixupOptionSpec>& fixup_option_specs();

// Sets option `name` (without dashes) to `value` ("" for a flag given without one). Unknown names and values are
// errors that name the option and list what it takes.
Status set_fixup_option(FixupOptions& options, std::string_view name, std::string_view value);

// "uuid", "dhcp": the names the parser takes, for reports and JSON.
const char* to_string(DeviceNaming naming);
const char* to_string(NetworkMode mode);

}  // namespace vdkit::fixups
