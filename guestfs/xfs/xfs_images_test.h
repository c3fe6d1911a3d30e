// Test images for the XFS reader: a known tree (files of many sizes, every directory form, symbolic links inline and
// remote, device nodes, owners and modes) laid down by mkfs.xfs's protofile, so v4 images need no kernel; v5 images
// get fragmented, sparse and preallocated files and extended attributes through the kernel when the test runs as
// root.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>

#include "blockcore/testing/test_shell.h"

namespace vdkit::guestfs::xfs::testimg {

// mkfs.xfs refuses file systems under 300 MB unless it believes it runs under xfstests.
inline const std::string kMkfsEnv = "TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=1 PATH=$PATH:/sbin:/usr/sbin ";

struct Node {
  char type = '-';  // '-' file, 'd' directory, 'l' symbolic link, 'c'/'b' device, 'p' fifo
  uint32_t perm = 0644;  // permission bits with setuid/setgid
  uint32_t uid = 0, gid = 0;
  std::string data;  // file content or link target
  uint32_t major = 0, minor = 0;
};

// Guest path -> what is there (directories included, "/" excluded).
using Model = std::map<std::string, Node>;

// Entries of the directories /dirs/nN: which sizes make which form depends on the block and inode sizes, and
// every size in between so each image has every form.
inline constexpr int kDirSizes[] = {3, 8, 20, 40, 300, 3000};

// The tree every image starts with. mkfs.xfs 6.1's protofile writes remote symbolic links on v5 without their block
// header (xfs_repair junks them), so v5 images get theirs through the kernel instead.
inline Model base_model(bool remote_symlink = true) {
  Model m;
  auto dir = [&](const std::string& p, uint32_t perm = 0755, uint32_t uid = 0) { m[p] = Node{'d', perm, uid, uid, ""}; };
  auto file = [&](const std::string& p, std::string data, uint32_t perm = 0644, uint32_t uid = 0, uint32_t gid = 0) {
    m[p] = Node{'-', perm, uid, gid, std::move(data)};
  };
  dir("/etc");
  file("/etc/fstab", "/dev/xvda2 / xfs defaults 0 0\n/dev/xvda1 /boot xfs defaults 0 0\n");
  file("/etc/hostname", "guest\n");
  file("/etc/empty", "");
  file("/etc/shadow", "root:*:19000:0:99999:7:::\n", 0600);
  std::string big;
  uint32_t x = 12345;
  for (int i = 0; i < (1 << 20) + 777; ++i) {
    x = x * 1103515245 + 12345;
    big.push_back(static_cast<char>(x >> 16));
  }
  file("/etc/big.bin", big);
  file("/etc/one-block", std::string(4096, 'b'));
  dir("/home", 0755);
  dir("/home/user", 0700, 1000);
  file("/home/user/notes", "owned by 1000:1001\n", 0640, 1000, 1001);
  file("/usr-bin-su", "#!/bin/sh\n", 04755);
  file("/sgid", "x", 02755, 0, 5);
  dir("/dirs");
  for (int n : kDirSizes) {
    std::string d = "/dirs/n" + std::to_string(n);
    dir(d);
    for (int i = 0; i < n; ++i) {
      char nm[80];
      std::snprintf(nm, sizeof nm, "/entry-%05d-%s", i, i % 3 ? "with-a-somewhat-longer-name" : "s");
      if (i % 50 == 7)
        m[d + nm] = Node{'l', 0777, 0, 0, "../../etc/hostname"};
      else if (i % 100 == 9)
        dir(d + nm);
      else
        file(d + nm, std::to_string(i) + "\n");
    }
  }
  dir("/links");
  m["/links/short"] = Node{'l', 0777, 0, 0, "../etc/fstab"};
  m["/links/absolute"] = Node{'l', 0777, 0, 0, "/etc/hostname"};
  std::string longt;
  while (longt.size() < 900) longt += "component-" + std::to_string(longt.size()) + "/";
  if (remote_symlink) m["/links/remote"] = Node{'l', 0777, 0, 0, longt + "end"};
  dir("/dev");
  m["/dev/null"] = Node{'c', 0666, 0, 0, "", 1, 3};
  m["/dev/xvda1"] = Node{'b', 0660, 0, 6, "", 202, 1};
  m["/dev/fifo"] = Node{'p', 0600, 0, 0, ""};
  std::string deep;
  for (int i = 0; i < 12; ++i) {
    deep += "/d" + std::to_string(i);
    dir(deep);
  }
  file(deep + "/bottom", "deep\n");
  return m;
}

// Writes `model` as an XFS image of `size_mb` at `image` with these mkfs options (the protofile's file contents go
// under `scratch`). Returns mkfs.xfs's exit status; its output goes to `log`.
inline int make_image(const Model& model, const std::string& image, const std::string& scratch,
                      const std::string& mkfs_opts, int size_mb, std::string* log) {
  std::filesystem::create_directories(scratch);
  std::string proto = "/dev/null\n0 0\nd--755 0 0\n";
  std::map<std::string, std::vector<std::string>> children;  // parent ("" = root) -> child paths
  for (const auto& [path, nd] : model) children[path.substr(0, path.rfind('/'))].push_back(path);
  int n = 0;
  auto mode = [](const Node& nd) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%c%c%c%03o", nd.type, (nd.perm & 04000) ? 'u' : '-', (nd.perm & 02000) ? 'g' : '-',
                  nd.perm & 0777);
    return std::string(buf);
  };
  std::function<void(const std::string&)> emit = [&](const std::string& dir) {
    for (const auto& path : children[dir]) {
      const Node& nd = model.at(path);
      proto += path.substr(path.rfind('/') + 1) + " " + mode(nd) + " " + std::to_string(nd.uid) + " " +
               std::to_string(nd.gid);
      if (nd.type == '-') {
        std::string src = scratch + "/f" + std::to_string(n++);
        std::ofstream(src, std::ios::binary) << nd.data;
        proto += " " + src;
      } else if (nd.type == 'l') {
        proto += " " + nd.data;
      } else if (nd.type == 'c' || nd.type == 'b') {
        proto += " " + std::to_string(nd.major) + " " + std::to_string(nd.minor);
      }
      proto += "\n";
      if (nd.type == 'd') {
        emit(path);
        proto += "$\n";
      }
    }
  };
  emit("");
  proto += "$\n";
  std::ofstream(scratch + "/proto") << proto;
  std::string cmd = "rm -f " + image + " && truncate -s " + std::to_string(size_mb) + "M " + image + " && " +
                    kMkfsEnv + "mkfs.xfs -q -f " + mkfs_opts + " -p " + scratch + "/proto " + image;
  return test::run(cmd, log);
}

// The directory form (per xfs_db): "shortform", "block", "leaf" or "node"; "" when xfs_db could not tell.
inline std::string dir_form(const std::string& image, const std::string& path, uint32_t block_size,
                            uint32_t dir_block_size) {
  std::string out =
      test::output_of("PATH=$PATH:/usr/sbin xfs_db -r -c 'path " + path + "' -c 'print core.format' -c bmap " +
                      image + " 2>/dev/null");
  if (out.find("(local)") != std::string::npos) return "shortform";
  if (out.find("(extents)") == std::string::npos && out.find("(btree)") == std::string::npos) return "";
  // "data offset 0 startblock 12 (0/12) count 1 flag 0": count the blocks in the leaf range (from 32 GiB).
  const uint64_t leaf = (32ull << 30) / block_size;
  uint64_t leaf_blocks = 0;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    unsigned long long off = 0, sb = 0, a = 0, b = 0, cnt = 0;
    int flag = 0;
    if (std::sscanf(line.c_str(), "data offset %llu startblock %llu (%llu/%llu) count %llu flag %d", &off, &sb, &a, &b,
                    &cnt, &flag) != 6)
      continue;
    if (off >= leaf && off < 2 * leaf) leaf_blocks += cnt;
  }
  if (leaf_blocks == 0) return "block";
  // Leaf form has one leaf block; node form a da node block and two or more leaf blocks.
  return leaf_blocks * block_size > dir_block_size ? "node" : "leaf";
}

}  // namespace vdkit::guestfs::xfs::testimg
