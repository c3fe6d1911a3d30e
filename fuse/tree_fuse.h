// A read-only FUSE low-level view over any guestfs::FileTree (the XFS and Btrfs readers), for `vdkit mount` without
// root and without --kernel.
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse3/fuse_lowlevel.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "guestfs/file_tree.h"

namespace vdkit {

// What statfs(2) reports of the mounted file system; the caller fills it from the reader's superblock (zeros are
// allowed: df then shows an empty file system).
struct TreeFuseStatfs {
  uint32_t block_size = 4096;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t total_inodes = 0;
  uint64_t free_inodes = 0;
  uint32_t name_max = 255;
};

// Userdata of the tree view. The tree outlives the session.
//
// Inode numbers are the tree's own, so lookups need no table and forget() has nothing to free; only the root is
// renamed: FUSE's inode 1 is tree->root_ino(), and a tree inode numbered 1 (when it is not the root) is shown as
// root_ino() in its place, so the mapping stays one to one.
// FileTree readers are not required to be thread-safe: every call into the tree holds `mu`, and every reply is sent
// after it is released, exactly once per request.
struct TreeFuseContext {
  guestfs::FileTreePtr tree;
  double timeout = 3600;  // entry and attribute cache lifetime in seconds (nothing else changes the tree)
  TreeFuseStatfs statfs;
  std::mutex mu;
  // Listings of open directories by handle: released by releasedir, and with the context for those the kernel never
  // released (an unmount with a directory still open).
  std::map<uint64_t, std::shared_ptr<void>> open_dirs;
};

// Ops: init, lookup, forget, getattr, readlink, open (EROFS for any write access), read, opendir, readdir,
// readdirplus, releasedir, statfs, getxattr, listxattr; everything that would change the tree answers EROFS.
// Errors from the tree go to the kernel as their errno, except EINVAL (Status::Corrupt), which becomes EIO; EIO,
// EINVAL and EUCLEAN are also logged to stderr with the reader's message, which the mount daemon keeps in its --log.
const fuse_lowlevel_ops& tree_fuse_ops();

}  // namespace vdkit
