// Fuzzes MBR (with extended/logical chains) and GPT parsing through read_partition_table and partition views.
#include "blockcore/layers/partition.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = vdkit::fuzz::write_file("disk.raw", data, size);
  vdkit::OpenOptions o;
  o.format = "raw";
  auto dev = vdkit::open_image(path, o);
  if (!dev.ok()) return 0;
  std::shared_ptr<vdkit::BlockDevice> disk(std::move(*dev));
  auto parts = vdkit::read_partition_table(*disk);
  if (!parts.ok()) return 0;
  for (const auto& p : *parts) {
    auto view = vdkit::make_partition_view(disk, p.offset, p.length);
    if (view) vdkit::fuzz::exercise(*view);
  }
  return 0;
}
