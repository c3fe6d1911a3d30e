// A volume group as its metadata text describes it: PVs, LVs and their segments, checked against named limits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockcore/base/status.h"
#include "blockcore/lvm/lvm_text.h"

namespace vdkit::lvm {

inline constexpr size_t kMaxPvs = 4096;          // PVs in one VG
inline constexpr size_t kMaxLvs = 8192;          // LVs in one VG (hidden sub-LVs included)
inline constexpr size_t kMaxSegments = 65536;    // segments of one LV
inline constexpr size_t kMaxStripes = 128;       // lvm2's own limit on stripes (and mirror/raid images)

struct PhysicalVolume {
  std::string name;         // "pv0", as segments name it
  std::string uuid;         // as the text has it, with dashes
  std::string device_hint;  // the path lvm2 last saw it at: a hint, never used to open anything
  uint64_t dev_size = 0;    // sectors
  uint64_t pe_start = 0;    // sectors from the start of the PV to extent 0
  uint64_t pe_count = 0;
};

struct Stripe {
  size_t pv = 0;  // index into VolumeGroup::pvs
  uint64_t start_extent = 0;
};

struct Segment {
  uint64_t start_extent = 0;  // in the LV
  uint64_t extent_count = 0;  // all stripes together
  std::string type;           // "striped" is the one vdkit maps; anything else makes its LV refused
  uint64_t stripe_size = 0;   // sectors; only with several stripes
  std::vector<Stripe> stripes;
  // Any other type: every string its section holds but `type` (the LVs it is built on: a snapshot's origin and COW
  // store, a thin LV's pool and external origin, a mirror's or raid's images). Names of no LV are harmless here.
  std::vector<std::string> names;
};

struct LogicalVolume {
  std::string name;
  std::string uuid;
  bool visible = true;             // hidden LVs are parts of others (thin pool data, raid images)
  uint64_t extent_count = 0;       // the sum over the segments
  std::vector<Segment> segments;   // sorted by start_extent, contiguous from 0
  std::string refusal;             // non-empty: why this LV cannot be opened (names the LV and the reason)
  // Another LV's segment names it (the origin of a snapshot, a thin LV's external origin, a sub-LV): what that LV
  // reads of it is not this LV's content alone, so its content's free blocks are not free (sparsify keeps them).
  bool read_by_other_lv = false;
  std::string type() const;        // "linear", "striped", or the first segment type vdkit does not map
};

struct VolumeGroup {
  std::string name;
  std::string uuid;
  int64_t seqno = 0;
  uint64_t extent_size = 0;  // sectors
  std::vector<PhysicalVolume> pvs;
  std::vector<LogicalVolume> lvs;

  const LogicalVolume* find_lv(const std::string& name) const;
};

// Builds the VG from parsed metadata text (the one top-level section that has an `id` and a `seqno`).
// Structural errors (a PV or segment naming what is not there, numbers that overflow) fail the whole VG;
// what only concerns one LV (an unmapped segment type, extents past the end of a PV) goes into its `refusal`.
Result<VolumeGroup> parse_volume_group(const TextSection& top);

}  // namespace vdkit::lvm
