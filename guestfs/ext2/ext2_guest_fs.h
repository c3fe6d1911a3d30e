// Ext2GuestFs: an ext2/3/4 file system as a GuestFs, read and written through libext2fs (no FUSE, no kernel mount).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "guestfs/ext2/ext2_volume.h"
#include "guestfs/free_space.h"
#include "guestfs/guest_fs.h"

namespace vdkit::guestfs {

// Shares the volume with whoever closes it: Ext2Volume::Close() flushes, and
// must run after the last GuestFs call, which this object cannot know.
class Ext2GuestFs final : public GuestFs, public FreeSpaceMap {
 public:
  // `what` names the file system in messages ("ext4 on partition 1").
  Ext2GuestFs(std::shared_ptr<Ext2Volume> vol, std::string what) : vol_(std::move(vol)), what_(std::move(what)) {}

  Result<std::string> read_file(const std::string& path, size_t max_bytes) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  std::vector<std::string> list_dir(const std::string& path) override;
  Status write_file(const std::string& path, std::string_view data) override;
  bool writable() const override { return vol_->writable(); }
  std::string describe() const override { return what_; }
  FreeSpaceMap* free_space() override { return this; }
  // The block bitmap's free blocks (Ext2Volume::UnusedRanges).
  Status unused_ranges(ByteRanges& out) override {
    return vol_->UnusedRanges(out).status();
  }

 private:
  std::shared_ptr<Ext2Volume> vol_;
  std::string what_;
};

}  // namespace vdkit::guestfs
