// `vdkit inspect`: what a guest disk (or guest folder) holds, read-only: file systems, OS, boot, kernels, network.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "fixups/inspect_report.h"
#include "fixups/run.h"

namespace vdkit::cli {
namespace {

struct InspectArgs {
  ImageOptions image;
  std::string output = "human";
  std::string source;
};

int run_inspect(const InspectArgs& a) {
  using namespace vdkit::fixups;
  Inspection in;
  struct stat st;
  if (::stat(a.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    auto fs = open_folder_guest(a.source, false);
    if (!fs.ok()) return fail("inspect", fs.status());
    in = inspect_guest(**fs, {});
  } else {
    auto dev = open_image(a.source, a.image.open_options());
    if (!dev.ok()) return fail("inspect", dev.status());
    auto r = inspect_device(std::shared_ptr<BlockDevice>(std::move(*dev)));
    if (!r.ok()) return fail("inspect", r.status().Context(a.source));
    in = std::move(*r);
  }
  if (a.output == "json")
    std::cout << to_json(in).dump(2) << "\n";
  else
    std::cout << to_human(in);
  return kExitOk;
}

CommandRegistrar reg({"inspect", "Show a guest's OS, file systems, boot loaders, kernels, network and consoles",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<InspectArgs>();
                        sub.description(
                            "Inspect a Linux guest without booting it, read-only, with no helper VM.\n"
                            "SOURCE is a disk image (raw, qcow2, VMDK) or a folder holding a guest tree\n"
                            "(for example one mounted with `vdkit mount`).\n\n"
                            "Reports: partitions and file systems (type, UUID, LABEL, size) and which is root;\n"
                            "what /etc/fstab and /etc/crypttab mount; the distribution, version and architecture;\n"
                            "boot loaders (grub legacy, grub2, BLS entries, syslinux/extlinux) with each entry's\n"
                            "kernel, initrd and command line and the default; the kernels in /boot and whether\n"
                            "virtio_blk, virtio_net, virtio_pci and virtio_scsi are built in, modules, and in the\n"
                            "initrd; network configs (ifcfg, interfaces, netplan, NetworkManager) with static or\n"
                            "DHCP and pinned MAC addresses; 70-persistent-net.rules; consoles; cloud-init; and every\n"
                            "Xen/VMware device name (/dev/xvd*, /dev/sd*, /dev/hd*) in the files that matter.\n\n"
                            "Only ext2/3/4 file systems are read. Exit status: 0 on success, 1 when the image or\n"
                            "guest cannot be read, 2 for bad usage.");
                        a->image.add_to(sub);
                        sub.add_option("--output", a->output, "Output format: human or json (for scripts)")
                            ->check(CLI::IsMember({"human", "json"}))
                            ->default_val("human");
                        sub.add_option("SOURCE", a->source, "Disk image or guest folder")->required();
                        return [a] { return run_inspect(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
