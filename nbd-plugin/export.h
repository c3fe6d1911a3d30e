// What the nbdkit plugin exports: its parameters, and the layered BlockDevice (source, overlay, partition) built from them.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "blockcore/base/block_device.h"
#include "blockcore/sources/image.h"
#include "blockcore/io/io_engine.h"

namespace vdkit::nbd {

enum class WriteMode { kReadOnly, kOverlay, kInPlace };

struct ExportConfig {
  std::string file;  // absolute path of the source
  bool allow_external_paths = false;
  size_t xva_disk = 0;  // xva-disk=N
  std::string format;  // empty: probe
  WriteMode write_mode = WriteMode::kReadOnly;
  bool write_mode_given = false;
  std::string overlay_path;  // qcow2 overlay file; empty keeps writes in memory
  int partition = 0;         // 0: the whole disk
  std::string lv;            // "VG/LV": export this logical volume (found on the disk's PVs) instead
  std::vector<std::string> lv_disks;  // disk=PATH (repeatable): the guest's other disks, for an LV's other PVs
  size_t cache_bytes = kDefaultCacheBytes;
  // sparsify=true: what the guest's file systems do not use reads as zeros and is reported as holes.
  bool sparsify = false;
};

// Named limits for parameters.
inline constexpr int kMaxXvaDiskNumber = 4095;  // xva-disk=N: far past the disks a XenServer VM can have
inline constexpr int kMaxPartitionNumber = 128;  // GPT's usual entry count; MBR logical partitions stay far below

// Checks the parameters together (after every key=value was seen).
Status validate(ExportConfig& cfg);

// The I/O engine the plugin's files use. nbdkit forks after get_ready, where
// the image is opened, and a ring made before the fork would be shared with
// the parent; so files do pread/pwrite until after_fork() switches this to
// the process-wide engine (io_uring unless the settings say VDKIT_IO=sync).
class ForkSafeEngine final : public IoEngine {
 public:
  const char* name() const override { return current().name(); }
  Status submit(std::span<IoRequest> reqs) override { return current().submit(reqs); }
  Status fsync(int fd) override { return current().fsync(fd); }
  void after_fork() { after_fork_.store(&default_io_engine(), std::memory_order_release); }

 private:
  IoEngine& current() const {
    IoEngine* e = after_fork_.load(std::memory_order_acquire);
    return e ? *e : *before_fork_;
  }
  std::unique_ptr<IoEngine> before_fork_ = make_sync_engine();
  std::atomic<IoEngine*> after_fork_{nullptr};
};

// The device the plugin serves and what nbdkit is told about it.
struct Export {
  std::shared_ptr<BlockDevice> device;
  std::string description;  // "vmdk streamOptimized, 8 GiB, writes kept in memory"
  uint32_t preferred_block = 4096;
  std::string sparsify_report;  // with sparsify=true: what was left out, one line per volume
};

// Opens the source with engine, then layers the overlay and the partition view.
// Errors name the parameter or the image at fault.
Result<Export> open_export(const ExportConfig& cfg, IoEngine* engine);

}  // namespace vdkit::nbd
