// Internal to the VHDX driver: the metadata log of Microsoft's VHDX specification (section "Log"), found and
// replayed into memory, never into the file.
//
// The log is a circular buffer of 4 KiB sectors at the header's LogOffset. An entry is a header sector ("loge",
// CRC-32C over the whole entry with its checksum field zeroed, EntryLength, Tail, SequenceNumber, DescriptorCount,
// LogGuid, FlushedFileOffset, LastFileOffset) and further descriptor sectors (32-byte "desc" data descriptors and
// "zero" descriptors), then one "data" sector per data descriptor. A data descriptor's 4 KiB write is its
// LeadingBytes (8), the data sector's 4084 middle bytes and its TrailingBytes (4); the sequence number is repeated
// in every descriptor and, split high/low, in every data sector. A sequence is a run of valid entries, each right
// after the previous one with the next sequence number; it is usable when its last entry (the head) names, in its
// Tail field, an entry of the run. The active sequence is the usable one with the highest head sequence number, and
// replay applies it from tail to head. An entry that fails a check ends the run it would have continued.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"
#include "blockcore/io/io_engine.h"

namespace vdkit::vhdx {

inline constexpr uint64_t kLogSectorBytes = 4096;
// The log region is read into memory whole for the scan: Hyper-V and qemu make 1 MiB logs.
inline constexpr uint64_t kMaxLogBytes = 64ull << 20;
// Bytes the scan may checksum in all (a log of entries that each fail their CRC costs EntryLength per sector).
inline constexpr uint64_t kMaxLogScanBytes = 512ull << 20;
// The file size a log entry may ask for (LastFileOffset): well past any 64 TiB disk with its metadata.
inline constexpr uint64_t kMaxLogFileBytes = 80ull << 40;
// Structures a descriptor may not write: the file identifier and both headers (the header locates the log, so the
// specification keeps its updates out of the log).
inline constexpr uint64_t kLogProtectedBytes = 192u << 10;

struct LogEntryInfo {
  uint64_t log_position = 0;  // byte offset inside the log
  uint64_t sequence = 0;
  uint32_t length = 0;
  uint32_t descriptors = 0;
  uint64_t flushed_file_offset = 0;
  uint64_t last_file_offset = 0;
};

// One write of the replay: `length` bytes at `file_offset`, from `data` (one 4 KiB sector) or zeros when empty.
struct LogWrite {
  uint64_t file_offset = 0;
  uint64_t length = 0;
  std::vector<uint8_t> data;
};

struct LogPlan {
  std::vector<LogEntryInfo> entries;  // the active sequence, tail to head
  std::vector<LogWrite> writes;       // in replay order
  uint64_t data_sectors = 0;
  uint64_t zero_bytes = 0;
  uint64_t view_size = 0;  // the file as replay leaves it: its size, or the entries' LastFileOffset if larger
  // When no entry is usable: why (the first entry that failed a check), and the plan is empty.
  std::string no_sequence_reason;
};

// Finds the active sequence of `log` (the log region's bytes, a multiple of 4 KiB) whose entries carry `log_guid`.
// `file_size` is the file's size now; `log_offset` where the log lies in the file (descriptors may not write it).
// With no usable sequence the plan is empty and says why: nothing was committed under this LogGuid, so the file is
// consistent as it is (qemu opens such a file as it is too). Corrupt when the file is shorter than the head's
// FlushedFileOffset (it was truncated), or when the scan would checksum more than kMaxLogScanBytes. `where` names
// the file in messages.
Result<LogPlan> plan_log_replay(std::span<const uint8_t> log, const uint8_t log_guid[16], uint64_t file_size,
                                uint64_t log_offset, const std::string& where);

// Applies the plan's writes, in order, to `target` (a copy-on-write layer over the file, plan.view_size bytes).
Status apply_log_replay(const LogPlan& plan, BlockDevice& target);

// The file as replay leaves it, never written: a memory overlay over the file's bytes (zeros past its end, up to
// plan.view_size) with the plan applied.
Result<BlockDevicePtr> replay_into_memory(std::shared_ptr<File> file, uint64_t file_size, const LogPlan& plan);

// "3 entries (sequence 7 to 9), 12 sectors written, 1048576 bytes zeroed".
std::string describe_log_replay(const LogPlan& plan);

}  // namespace vdkit::vhdx
