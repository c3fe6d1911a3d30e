// A target file written under a temporary name beside it and renamed over the target only when complete.
#pragma once

#include <string>

#include "blockcore/base/status.h"

namespace vdkit {

// The target under "TARGET.vdkit-tmp.RANDOM": removed on destruction unless committed.
class TempTarget {
 public:
  TempTarget() = default;
  TempTarget(const TempTarget&) = delete;
  TempTarget& operator=(const TempTarget&) = delete;
  ~TempTarget();
  // Refuses a folder, a non-regular file, or an existing target unless `overwrite`.
  Status create(const std::string& target, bool overwrite);
  int fd() const { return fd_; }
  const std::string& tmp() const { return tmp_; }
  const std::string& target() const { return target_; }
  // Closes the file and renames it over the target.
  Status commit();

 private:
  std::string target_;
  std::string tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace vdkit
