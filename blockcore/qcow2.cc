// Placeholder until the qcow2 driver lands.
#include "blockcore/image.h"
namespace vdkit {
Result<BlockDevicePtr> open_qcow2(std::shared_ptr<File> file, const OpenContext&) {
  return Status::Unsupported("'" + file->path() + "': qcow2 driver not built yet");
}
}  // namespace vdkit
