// `vdkit inspect`: what a guest disk (or guest folder) holds, read-only: file systems, OS, boot, kernels, network.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "blockcore/layers/volumes.h"
#include "fixups/inspect_report.h"
#include "fixups/volume_report.h"
#include "fixups/run.h"

namespace vdkit::cli {
namespace {

struct InspectArgs {
  ImageOptions image;
  std::string output = "human";
  std::vector<std::string> sources;
};

int run_inspect(const InspectArgs& a) {
  using namespace vdkit::fixups;
  Inspection in;
  struct stat st;
  std::optional<lvm::ScanResult> vgs;
  const std::string& first = a.sources[0];
  if (::stat(first.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    if (a.sources.size() > 1) return fail("inspect", Status::Invalid("a guest folder is inspected alone"));
    auto fs = open_folder_guest(first, false);
    if (!fs.ok()) return fail("inspect", fs.status());
    in = inspect_guest(**fs, {});
  } else {
    std::vector<std::shared_ptr<BlockDevice>> disks;
    std::vector<vdkit::GuestDisk> named;
    for (const auto& s : a.sources) {
      // A file that holds several disks (an XVA export) is the whole guest, unless --xva-disk picks one.
      Result<std::vector<BlockDevicePtr>> devs = std::vector<BlockDevicePtr>();
      if (a.image.xva_disk < 0) {
        devs = open_image_disks(s, a.image.open_options());
      } else if (auto one = open_image(s, a.image.open_options()); one.ok()) {
        devs->push_back(std::move(*one));
      } else {
        devs = one.status();
      }
      if (!devs.ok()) return fail("inspect", devs.status());
      for (size_t i = 0; i < devs->size(); ++i) {
        warn("inspect", chain_warnings((*devs)[i]->info()));
        disks.emplace_back(std::move((*devs)[i]));
        named.push_back({devs->size() > 1 ? s + " (disk " + std::to_string(i) + ")" : s, disks.back()});
      }
    }
    auto r = inspect_devices(disks);
    if (!r.ok()) return fail("inspect", r.status().Context(first));
    in = std::move(*r);
    if (auto scan = scan_volume_groups(named); scan.ok() && !scan->vgs.empty()) vgs = std::move(*scan);
  }
  if (a.output == "json") {
    nlohmann::json j = to_json(in);
    if (vgs) j["volume-groups"] = volume_groups_json(*vgs);
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << to_human(in);
    if (vgs) std::cout << "Volume groups:\n" << volume_groups_text(*vgs, "  ");
  }
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
                            "A guest on several disks is inspected from all of them (SOURCE DISK1 ...): LVM2\n"
                            "volume groups spanning them are read in userspace (nothing is activated) and their\n"
                            "LVs listed with the other file systems; root may be on an LV. An XVA export is a\n"
                            "guest on all its disks (in the VM's device order), unless --xva-disk picks one.\n\n"
                            "Only ext2/3/4 file systems are read. Exit status: 0 on success, 1 when the image or\n"
                            "guest cannot be read, 2 for bad usage.");
                        a->image.add_to(sub);
                        sub.add_option("--output", a->output, "Output format: human or json (for scripts)")
                            ->check(CLI::IsMember({"human", "json"}))
                            ->default_val("human");
                        sub.add_option("SOURCE", a->sources,
                                       "Disk image or guest folder; several disk images for a guest on several "
                                       "disks, in the order the guest names them (xvda, xvdb, ...)")
                            ->required();
                        return [a] { return run_inspect(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
