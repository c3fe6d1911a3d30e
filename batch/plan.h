// A migration plan: one row per guest (name, disks, output folder, format, fixups), read from CSV or JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blockcore/base/status.h"
#include "fixups/options.h"

namespace vdkit::batch {

// Limits on what a plan file may hold, so a wrong file ends in an error, not in a runaway.
inline constexpr size_t kMaxPlanBytes = 16u << 20;
inline constexpr size_t kMaxPlanRows = 100000;
inline constexpr size_t kMaxDisksPerGuest = 64;

struct PlanDisk {
  std::string source;  // a path (relative ones are taken from the plan's folder) or an NBD URI
  std::string target;  // the full target path, by the naming rule of blockcore/convert/target_names.h, or the
                       // row's `targets` column: a block device or NBD URI written in place (or a file)
  bool in_place = false;  // a block device or NBD export: no temporary name, never removed, resumable
};

struct PlanGuest {
  size_t row = 0;   // 0-based data row (what --index and JOB_COMPLETION_INDEX count)
  size_t line = 0;  // 1-based line of the plan file (CSV) where the row starts; 0 for JSON
  std::string name;
  std::vector<PlanDisk> disks;
  std::string output;          // the target folder
  std::string format = "raw";  // raw or qcow2
  std::string compression;     // "", zlib or zstd (qcow2 only)
  bool fixup = false;
  bool sparsify = false;  // leave out what the guest's file systems do not use (convert --sparsify)
  fixups::FixupOptions fixup_options;
  std::vector<std::pair<std::string, std::string>> fixup_columns;  // as given, for reports and emitted jobs
};

struct Plan {
  std::string path;  // the plan file
  std::string text;  // its bytes as read (the state file's fingerprint, the Kubernetes ConfigMap)
  std::vector<PlanGuest> guests;
};

// The columns every plan has, and the optional ones besides the fixup options (fixups::fixup_option_specs names).
inline constexpr const char* kRequiredColumns[] = {"name", "disks", "output", "format", "fixup"};
inline constexpr const char* kOptionalColumns[] = {"compression", "sparsify", "targets"};

// Parses a plan: JSON when the first non-blank byte is '[' or '{' (a list of objects, or {"guests": [...]}, with
// the same keys as the CSV columns; "disks" a list or a ';'-separated string), CSV with a header row otherwise.
// Relative disk and output paths are taken from base_dir. Errors name the row (and line) and the column.
Result<Plan> parse_plan(const std::string& text, const std::string& path, const std::string& base_dir);
Result<Plan> read_plan(const std::string& path);

// CSV records as RFC 4180 has them: commas, double quotes ("" inside quotes), CRLF or LF; blank lines skipped.
// Each record carries the 1-based line it starts on.
struct CsvRecord {
  size_t line = 0;
  std::vector<std::string> fields;
};
Result<std::vector<CsvRecord>> parse_csv(const std::string& text);

// Quotes one CSV field when it needs it.
std::string csv_field(const std::string& s);

}  // namespace vdkit::batch
