// `vdkit mount`: shows a guest's file system (or its disk and partitions as files) through FUSE, read-only or with writes.
#include <cstdio>

#include "cli/command.h"
#include "fuse/mount.h"

namespace vdkit::cli {
namespace {

struct MountArgs {
  MountConfig cfg;
  bool allow_external_paths = false;
  std::string format;
  size_t xva_disk = 0;
};

int run(MountArgs& a) {
  if ((a.cfg.in_place || !a.cfg.overlay_path.empty()) && !a.cfg.writable) {
    std::fprintf(stderr, "vdkit mount: --overlay and --in-place need --rw\n");
    return kExitUsage;
  }
  if (a.cfg.in_place && !a.cfg.overlay_path.empty()) {
    std::fprintf(stderr, "vdkit mount: --overlay and --in-place exclude each other\n");
    return kExitUsage;
  }
  if (a.cfg.raw && a.cfg.kernel) {
    std::fprintf(stderr, "vdkit mount: --raw and --kernel exclude each other\n");
    return kExitUsage;
  }
  a.cfg.open.allow_external_paths = a.allow_external_paths;
  a.cfg.open.format = a.format;
  a.cfg.open.xva_disk = a.xva_disk;
  Status st = run_mount(a.cfg);
  if (!st.ok()) return fail("mount", st);
  return kExitOk;
}

CommandRegistrar reg({"mount", "Mount a guest's file system (or its disk and partitions) with FUSE",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<MountArgs>();
                        sub.description(
                            "Mount SOURCE (VMDK, QCOW2 or raw) on MOUNTPOINT with FUSE, on the host, without a\n"
                            "helper VM.\n"
                            "\n"
                            "By default the ext2/3/4, XFS or Btrfs file system of the guest is shown: the first\n"
                            "partition (MBR or GPT) that holds one, the partition named by --partition, or the\n"
                            "whole disk when it has no partition table. Owners, modes, symlinks, device nodes and\n"
                            "extended attributes appear as the guest has them. XFS (v4 and v5) and Btrfs are read\n"
                            "by vdkit itself and shown read-only, without root; a log the guest left dirty (an XFS\n"
                            "log, a Btrfs log tree) is not replayed (a warning says so), so the view may miss the\n"
                            "guest's last writes. Btrfs shows the default subvolume, or the one --subvol names\n"
                            "(nested subvolumes appear inside it).\n"
                            "\n"
                            "--raw shows a folder with `disk` (the whole device) and `p1`, `p2`, ... (one file per\n"
                            "partition), answering SEEK_DATA/SEEK_HOLE from the image's extents, for cp --sparse,\n"
                            "qemu-img, fdisk, blkid and dd. LVM2 logical volumes on the disk appear beside them\n"
                            "under their /dev/mapper names (`ubuntu--vg-ubuntu--lv`), read through their segments\n"
                            "without activating anything; writes to them go to the PVs' bytes.\n"
                            "\n"
                            "--lv VG/LV shows the file system of that logical volume instead of a partition's.\n"
                            "\n"
                            "Writes: without --rw the mount is read-only. With --rw, writes go to a copy-on-write\n"
                            "layer kept in memory (lost at unmount), or with --overlay PATH to a new qcow2 file\n"
                            "whose backing file is SOURCE (readable by qemu-img and vdkit convert); --in-place\n"
                            "writes SOURCE itself (raw and qcow2). The source is otherwise never changed.\n"
                            "Unmounting flushes everything and leaves a file system e2fsck finds clean.\n"
                            "\n"
                            "--kernel (root only) mounts the file system with the host kernel's own driver (XFS\n"
                            "read-write, Btrfs), on a loop device over a private raw view of the write layer; a\n"
                            "read-only --kernel mount does not replay logs (norecovery/noload), a --rw one replays\n"
                            "them into the write layer. `vdkit umount` tears everything down.\n"
                            "\n"
                            "vdkit mount returns once the mount is ready and keeps serving it in the background\n"
                            "(-f stays in the foreground). Unmount with `vdkit umount MOUNTPOINT` (which waits for\n"
                            "the flush) or `fusermount3 -u MOUNTPOINT`.\n"
                            "\n"
                            "Exit status: 0 when mounted, 1 when the source or its file system cannot be mounted,\n"
                            "2 for bad usage.");
                        sub.add_flag("--rw", a->cfg.writable, "Allow writes (to memory unless --overlay or --in-place)");
                        sub.add_option("--overlay", a->cfg.overlay_path,
                                       "With --rw: write to a new qcow2 file PATH backed by SOURCE")
                            ->type_name("PATH");
                        sub.add_flag("--in-place", a->cfg.in_place, "With --rw: write to SOURCE itself");
                        auto* part = sub.add_option("--partition", a->cfg.partition,
                                                    "Use partition N (1-based as Linux numbers them; logical ones from 5)")
                                         ->type_name("N")
                                         ->check(CLI::Range(1, 1024));
                        sub.add_option("--lv", a->cfg.lv,
                                       "Use logical volume LV of LVM2 volume group VG, found on the disk's PVs")
                            ->type_name("VG/LV")
                            ->excludes(part);
                        sub.add_option("--disk", a->cfg.lv_disks,
                                       "Another disk of the same guest holding PVs of its volume groups (repeatable)")
                            ->type_name("PATH");
                        sub.add_flag("--raw", a->cfg.raw, "Show the disk and partitions as files instead of a file system");
                        sub.add_flag("--kernel", a->cfg.kernel,
                                     "Root only: mount the partition with the kernel's driver (XFS, Btrfs, ...)");
                        sub.add_option("--subvol", a->cfg.subvol,
                                       "Btrfs: show the subvolume with this path from the top level (@/home, /) or\n"
                                       "this id (256) instead of the default subvolume; with --kernel it becomes\n"
                                       "the subvol=/subvolid= mount option")
                            ->type_name("NAME|ID");
                        sub.add_flag("-f,--foreground", a->cfg.foreground, "Stay in the foreground until unmounted");
                        sub.add_flag("--debug", a->cfg.debug, "Trace FUSE requests on stderr (implies -f)");
                        sub.add_option("--log", a->cfg.log_path, "Append the background daemon's messages to FILE")
                            ->type_name("FILE");
                        sub.add_option("--format", a->format, "Source format instead of probing the content")
                            ->check(CLI::IsMember(known_formats()));
                        sub.add_flag("--allow-external-paths", a->allow_external_paths,
                                     "Follow backing, extent and data-file names that are absolute or leave the "
                                     "image's folder");
                        sub.add_option("--xva-disk", a->xva_disk,
                                       "For an XVA export: mount disk N (from 0, in the VM's device order) instead "
                                       "of disk 0")
                            ->check(CLI::Range(0, 4095));
                        sub.add_option("SOURCE", a->cfg.source, "The disk image")->required();
                        sub.add_option("MOUNTPOINT", a->cfg.mountpoint, "An existing empty folder")->required();
                        return [a] { return run(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
