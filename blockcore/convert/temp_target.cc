// TempTarget: a target written beside itself under a random temporary name, renamed only on success.
#include "blockcore/convert/temp_target.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <random>

namespace vdkit {

namespace {

std::string random_suffix() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return std::string(buf, 12);
}

}  // namespace

TempTarget::~TempTarget() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty() && !committed_) ::unlink(tmp_.c_str());
}

Status TempTarget::create(const std::string& target, bool overwrite) {
  target_ = target;
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::Error(EISDIR, "target '" + target + "' is a directory");
    if (!S_ISREG(st.st_mode))
      return Status::Unsupported("target '" + target + "' exists and is not a regular file; vdkit writes only new files");
    if (!overwrite) return Status::Error(EEXIST, "target '" + target + "' exists; pass --overwrite to replace it");
  }
  for (int attempt = 0; attempt < 16; ++attempt) {
    tmp_ = target + ".vdkit-tmp." + random_suffix();
    fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ >= 0) return Status::Ok();
    if (errno != EEXIST) {
      int err = errno;
      tmp_.clear();
      return Status::FromErrno(err, "cannot create the temporary target beside '" + target + "'");
    }
  }
  tmp_.clear();
  return Status::Error(EEXIST, "cannot find a free temporary name beside '" + target + "'");
}

Status TempTarget::commit() {
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::FromErrno(errno, "closing '" + tmp_ + "'");
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), target_.c_str()) != 0)
    return Status::FromErrno(errno, "renaming '" + tmp_ + "' to '" + target_ + "'");
  committed_ = true;
  return Status::Ok();
}

}  // namespace vdkit
