// Partition tables (MBR with extended/logical partitions, GPT) and PartitionView, a window onto one partition.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/base/byte_ranges.h"

namespace vdkit {

struct Partition {
  int number = 0;            // 1-based as Linux names them (MBR logical partitions start at 5)
  uint64_t offset = 0;       // bytes from the start of the disk
  uint64_t length = 0;       // bytes
  std::string scheme;        // "mbr" or "gpt"
  std::string type;          // MBR: "0x83"; GPT: type GUID, lower case
  std::string uuid;          // GPT: partition GUID; MBR: "<disk signature>-<number>" as blkid's PARTUUID
  std::string name;          // GPT partition name (UTF-8), empty for MBR
  bool bootable = false;     // MBR active flag / GPT legacy BIOS bootable attribute
};

// Reads the partition table of dev. An empty vector when the disk has none
// (e.g. a file system on the whole disk). Corrupt tables give a clear error;
// entries are checked against the disk size.
Result<std::vector<Partition>> read_partition_table(BlockDevice& dev);

// The same, also filling `table_ranges` (cleared first) with the {offset, length} byte ranges the table itself
// occupies: the MBR sector, every EBR sector of the logical chain, the GPT headers with their entry arrays (the
// backup as the whole tail after the last usable LBA). In the order they are read, which is not sorted by offset:
// an EBR may point back before the one that links to it. May touch; normalize_ranges sorts them. For sparsify,
// which must keep them while it drops the space outside every partition.
Result<std::vector<Partition>> read_partition_table(BlockDevice& dev, ByteRanges* table_ranges);

// MBR type of an extended partition (0x05, 0x0f, 0x85): a container of logical partitions, holding no file system.
bool is_extended_container(const Partition& p);

// A BlockDevice showing [offset, offset+length) of base. Every call, writes
// included, is forwarded with the offset added; extents are clipped.
BlockDevicePtr make_partition_view(std::shared_ptr<BlockDevice> base, uint64_t offset, uint64_t length);

}  // namespace vdkit
