// `vdkit umount`: unmounts a `vdkit mount` and waits until its daemon has flushed every write.
#include "cli/command.h"
#include "fuse/mount.h"

namespace vdkit::cli {
namespace {

CommandRegistrar reg({"umount", "Unmount a vdkit mount and wait for its writes to be flushed",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto mp = std::make_shared<std::string>();
                        sub.description(
                            "Unmount MOUNTPOINT, made by `vdkit mount`, and wait until the daemon serving it has\n"
                            "flushed every write (to the overlay or the source) and exited, so the image is\n"
                            "complete when this returns. For --kernel mounts the kernel mount, its loop device and\n"
                            "the private raw view are all torn down.\n"
                            "Exit status: 0 when unmounted, 1 when it is busy or not a mount, 2 for bad usage.");
                        sub.add_option("MOUNTPOINT", *mp, "The folder a vdkit mount is on")->required();
                        return [mp] {
                          Status st = run_umount(*mp);
                          if (!st.ok()) return fail("umount", st);
                          return kExitOk;
                        };
                      }});

}  // namespace
}  // namespace vdkit::cli
