// Internal to the XVA source: ova.xml (XML-RPC values describing the VM, its VBDs and VDIs) read into a manifest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockcore/base/status.h"

namespace vdkit::xva {

// Named limits.
inline constexpr uint64_t kMaxOvaXmlBytes = 64u << 20;
inline constexpr int kMaxXmlDepth = 64;
inline constexpr size_t kMaxDisks = 256;
inline constexpr uint64_t kMaxDiskBytes = 64ull << 40;

struct XvaDisk {
  std::string ref;         // the VDI's id, "Ref:12": the folder of its chunks
  std::string name;        // the VDI's name_label
  std::string userdevice;  // the VBD's position ("0", "1", ...)
  uint64_t size = 0;       // virtual_size
};

struct XvaManifest {
  std::string vm_name;
  std::vector<XvaDisk> disks;  // in the VM's device order (VBD userdevice)
};

// Parses ova.xml. Disks are the VM's VBDs of type Disk with their VDI, in userdevice order; a file with no VM
// lists every VDI in document order.
Result<XvaManifest> parse_ova_xml(const std::string& xml, const std::string& where);

}  // namespace vdkit::xva
