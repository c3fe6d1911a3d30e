// Placeholder until the vmdk driver lands.
#include "blockcore/image.h"
namespace vdkit {
Result<BlockDevicePtr> open_vmdk(std::shared_ptr<File> file, const OpenContext&) {
  return Status::Unsupported("'" + file->path() + "': vmdk driver not built yet");
}
}  // namespace vdkit
