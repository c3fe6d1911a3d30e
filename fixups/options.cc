// Parsing the fixup options once, so the CLI's subcommands and plan files cannot drift apart.
#include "fixups/options.h"

namespace vdkit::fixups {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

Result<bool> parse_flag(std::string_view name, std::string_view value) {
  if (value.empty() || value == "true" || value == "yes" || value == "1") return true;
  if (value == "false" || value == "no" || value == "0") return false;
  return Status::Invalid(std::string(name) + "=" + std::string(value) + ": expected true or false");
}

}  // namespace

const std::vector<FixupOptionSpec>& fixup_option_specs() {
  static const std::vector<FixupOptionSpec> specs = {
      {"device-names", {"uuid", "label", "vd"},
       "How fstab, crypttab and boot loaders name disks: uuid (default), label, or vd (/dev/vdX)"},
      {"network", {"dhcp", "keep", "none"},
       "Network configs: dhcp (default: static becomes DHCP, pinned MACs go), keep (addresses stay, pinned MACs "
       "go), none (configs and NIC naming left as they are)"},
      {"no-network", {}, "Same as --network none"},
      {"backup", {}, "Keep each edited file as FILE.vdkit-orig beside it in the guest"},
      {"kernel", {}, "Write XFS and Btrfs guests through the host kernel (a private loop mount; needs root)"},
      {"replay-journal", {}, "With --in-place: replay a journal that needs recovery into the image itself"},
      {"force", {},
       "Write even when the pre-write checks find the file system inconsistent, or its journal could be replayed "
       "only in part"},
      {"no-initramfs", {}, "Leave the guest's initramfs images as they are (no virtio drivers added)"},
  };
  return specs;
}

Status set_fixup_option(FixupOptions& o, std::string_view name, std::string_view value) {
  const std::string n(name), v(value);
  if (n == "device-names") {
    auto naming = parse_device_naming(v);
    if (!naming) return Status::Invalid("device-names=" + v + ": expected uuid, label or vd");
    o.naming = *naming;
    return Status::Ok();
  }
  if (n == "network") {
    if (v == "dhcp") o.network = NetworkMode::kDhcp;
    else if (v == "keep") o.network = NetworkMode::kKeep;
    else if (v == "none") o.network = NetworkMode::kNone;
    else return Status::Invalid("network=" + v + ": expected dhcp, keep or none");
    return Status::Ok();
  }
  if (n == "no-network") {
    VDKIT_ASSIGN_OR_RETURN(bool on, parse_flag(name, value));
    if (on) o.network = NetworkMode::kNone;
    return Status::Ok();
  }
  if (n == "backup") {
    VDKIT_ASSIGN_OR_RETURN(o.backup, parse_flag(name, value));
    return Status::Ok();
  }
  if (n == "kernel") {
    VDKIT_ASSIGN_OR_RETURN(o.kernel, parse_flag(name, value));
    return Status::Ok();
  }
  if (n == "replay-journal") {
    VDKIT_ASSIGN_OR_RETURN(o.replay_journal, parse_flag(name, value));
    return Status::Ok();
  }
  if (n == "force") {
    VDKIT_ASSIGN_OR_RETURN(o.force, parse_flag(name, value));
    return Status::Ok();
  }
  if (n == "no-initramfs") {
    VDKIT_ASSIGN_OR_RETURN(bool on, parse_flag(name, value));
    o.initramfs = !on;
    return Status::Ok();
  }
  std::vector<std::string> names;
  for (const auto& s : fixup_option_specs()) names.push_back(s.name);
  return Status::Invalid("unknown fixup option '" + n + "' (known: " + join(names) + ")");
}

const char* to_string(DeviceNaming naming) {
  switch (naming) {
    case DeviceNaming::kUuid: return "uuid";
    case DeviceNaming::kLabel: return "label";
    case DeviceNaming::kVd: return "vd";
  }
  return "uuid";
}

const char* to_string(NetworkMode mode) {
  switch (mode) {
    case NetworkMode::kDhcp: return "dhcp";
    case NetworkMode::kKeep: return "keep";
    case NetworkMode::kNone: return "none";
  }
  return "dhcp";
}

}  // namespace vdkit::fixups
