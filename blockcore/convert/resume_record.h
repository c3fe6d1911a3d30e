// The resume record of a conversion written in place: where it stopped, and how to tell the source is unchanged.
#pragma once

#include <cstdint>
#include <string>

#include "blockcore/base/block_device.h"
#include "blockcore/base/status.h"

namespace vdkit {

// Bytes at the start of the source whose checksum a resume compares.
inline constexpr uint64_t kResumeHeaderBytes = 1u << 20;
// A record larger than this is not one of ours.
inline constexpr uint64_t kMaxResumeRecordBytes = 64u << 10;

// A small JSON file ("vdkit-resume": 1). Offsets are virtual offsets of the
// source; the target is complete and flushed below `flushed`. The checksums
// (CRC-32, hex) are of the source as converted (after --fixup, if given).
struct ResumeRecord {
  std::string source;
  std::string target;
  std::string target_format;  // "raw" or "qcow2"
  uint64_t cluster_size = 0;
  std::string compression;  // "", "zlib" or "zstd"
  bool fixup = false;
  uint64_t source_size = 0;
  uint64_t target_size = 0;
  uint64_t header_bytes = 0;
  std::string header_crc32;
  uint64_t flushed = 0;
  uint64_t last_chunk_offset = 0;
  uint64_t last_chunk_bytes = 0;
  std::string last_chunk_crc32;
};

// Writes the record atomically (a temporary file beside it, fsync, rename),
// making its folder if needed.
Status write_resume_record(const std::string& path, const ResumeRecord& r);
// Reads and checks a record; errors name the file and the field.
Result<ResumeRecord> read_resume_record(const std::string& path);

// CRC-32 of [offset, offset+length) of the device, as 8 hex digits.
Result<std::string> device_crc32(BlockDevice& dev, uint64_t offset, uint64_t length);

// The record's default path for a target: STATE_DIR/resume/NAME.json, NAME
// the target with every character but [A-Za-z0-9.-] made '_' (cut to 80)
// and the CRC-32 of the full name, so two targets never share a record.
std::string default_resume_record_path(const std::string& state_dir, const std::string& target);

}  // namespace vdkit
