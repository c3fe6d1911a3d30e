// Xen, SCSI and IDE disk names (/dev/xvda1, /dev/sdb, /dev/hda2): parsed, spelled, found in text, and mapped.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vdkit::fixups {

// A device name like /dev/xvda1: prefix "xvd", disk index 0 ("a"), partition 1.
// partition is 0 for a whole disk ("/dev/xvde").
struct DeviceName {
  std::string prefix;  // "xvd", "sd", "hd", "vd"
  int disk = 0;        // a=0, b=1, ..., z=25, aa=26, ...
  int partition = 0;
};
// Parses /dev/{xvd,sd,hd,vd}<letters>[<number>]; nullopt for anything else.
std::optional<DeviceName> parse_device_name(std::string_view s);
// "a" for 0, "aa" for 26.
std::string disk_letters(int disk);

// Maps a device reference (as written in the guest) to what replaces it, or nullopt to keep it.
using DeviceMapFn = std::function<std::optional<std::string>(std::string_view device)>;

// Every /dev/xvd*, /dev/sd*, /dev/hd* name in text (in order, repeated as found).
std::vector<std::string> find_device_names(std::string_view text);

}  // namespace vdkit::fixups
