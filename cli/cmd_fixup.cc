// `vdkit fixup`: the Xen/VMware-to-KVM fixups on a guest disk (in place, or into a new image) or a guest folder.
#include <sys/stat.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/convert/convert_job.h"
#include "blockcore/layers/device_stack.h"
#include "cli/command.h"
#include "cli/guest_disks.h"
#include "cli/fixup_flags.h"
#include "fixups/run.h"

namespace vdkit::cli {
namespace {

struct FixupArgs {
  ImageOptions image;
  bool dry_run = false;
  bool in_place = false;
  std::string output;
  std::string target_format = "qcow2";
  FixupFlags fixup;
  bool output_json = false;
  bool overwrite = false;
  std::string source;
  std::vector<std::string> sources;  // SOURCE...: the guest's disks, in the order the guest names them
};

int run_fixup(const FixupArgs& a) {
  using namespace vdkit::fixups;
  int modes = int(a.dry_run) + int(a.in_place) + int(!a.output.empty());
  if (modes != 1) {
    std::fprintf(stderr, "vdkit fixup: give exactly one of --dry-run, --in-place or -o OUTPUT\n");
    return kExitUsage;
  }
  auto parsed = a.fixup.options();
  if (!parsed.ok()) {
    std::fprintf(stderr, "vdkit fixup: %s\n", parsed.status().message().c_str());
    return kExitUsage;
  }
  const FixupOptions opt = *parsed;
  struct stat st;
  bool folder = ::stat(a.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  Result<FixupResult> r = Status::IoError("not run");
  if (a.sources.size() > 1) {
    if (folder) {
      std::fprintf(stderr, "vdkit fixup: a guest folder is fixed alone\n");
      return kExitUsage;
    }
    if (!a.output.empty()) {
      // -o FOLDER: one fixed image per disk, named after its source.
      FixupResult res;
      ConvertOptions co;
      co.target_io = target_io();
      co.format = a.target_format == "raw" ? TargetFormat::kRaw : TargetFormat::kQcow2;
      co.overwrite = a.overwrite;
      co.open = a.image.open_options();
      auto written = convert_guest_disks(a.sources, a.output, co, a.target_format, &opt, &res, nullptr);
      if (!written.ok()) return fail("fixup", written.status());
      r = std::move(res);
    } else {
      std::vector<std::shared_ptr<BlockDevice>> disks;
      for (const auto& s : a.sources) {
        StackSpec spec;
        spec.source = s;
        spec.open = a.image.open_options();
        spec.writes = a.in_place ? WriteLayer::kInPlace : WriteLayer::kNone;
        spec.labels.in_place = "--in-place";
        spec.labels.overlay_hint = "use -o OUTPUT";
        auto stack = open_device_stack(spec);
        if (!stack.ok()) return fail("fixup", stack.status());
        disks.push_back(stack->top);
      }
      r = fixup_devices(disks, opt, a.in_place);
    }
  } else if (folder) {
    if (!a.output.empty()) {
      std::fprintf(stderr, "vdkit fixup: -o needs a disk image as SOURCE, not a folder\n");
      return kExitUsage;
    }
    r = fixup_folder(a.source, opt, a.in_place);
  } else {
    if (!a.output.empty()) {
      // The same one pass as `vdkit convert --fixup`: the fixups land in a
      // memory overlay that is streamed to OUTPUT; SOURCE is only read.
      FixupResult res;
      ConvertOptions co;
      co.target_io = target_io();
      co.format = a.target_format == "raw" ? TargetFormat::kRaw : TargetFormat::kQcow2;
      co.overwrite = a.overwrite;
      co.open = a.image.open_options();
      co.prepare_source = [&](std::shared_ptr<BlockDevice> src) {
        return make_fixed_overlay(std::move(src), opt, &res);
      };
      auto stats = convert_path(a.source, a.output, co);
      if (!stats.ok()) return fail("fixup", stats.status().Context(a.source));
      r = std::move(res);
    } else {
      StackSpec spec;
      spec.source = a.source;
      spec.open = a.image.open_options();
      spec.writes = a.in_place ? WriteLayer::kInPlace : WriteLayer::kNone;
      spec.labels.in_place = "--in-place";
      spec.labels.overlay_hint = "use -o OUTPUT";
      auto stack = open_device_stack(spec);
      if (!stack.ok()) return fail("fixup", stack.status());
      r = fixup_device(stack->top, opt, a.in_place);
    }
  }
  if (!r.ok()) return fail("fixup", r.status().Context(a.source));
  if (a.output_json) {
    nlohmann::json j = to_json(r->plan);
    j["applied"] = !a.dry_run;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << to_human(r->plan);
    if (a.dry_run && !r->plan.changes.empty()) std::cout << "(dry run: nothing was changed)\n";
  }
  return kExitOk;
}

CommandRegistrar reg({"fixup", "Apply the Xen/VMware-to-KVM fixups to a guest disk or folder",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<FixupArgs>();
                        sub.description(
                            "Make a Linux guest from Xen or VMware boot on KVM, editing its files directly (no\n"
                            "guest binary is run, no helper VM). SOURCE is a disk image or a guest folder; a guest on\n"
                            "several disks is given all of them, in the order it names them (xvda, xvdb, ...), and\n"
                            "-o is then a folder that receives one image per disk, named after each source.\n"
                            "Root may be on an LVM2 LV; LVM names (/dev/mapper/VG-LV, /dev/VG/LV, rd.lvm.lv=) stay.\n\n"
                            "Changes: device names in /etc/fstab, /etc/crypttab and every boot loader (root=,\n"
                            "resume=; grub legacy, grub2 grub.cfg, /etc/default/grub and grub.d/*.cfg, BLS entries\n"
                            "and grubenv, syslinux/extlinux) become UUID= (or LABEL=, or /dev/vdX), mapped through\n"
                            "the disk's real partition table; console=xvc0/hvc0 becomes console=ttyS0, and so do\n"
                            "inittab's getty and /etc/securetty; a Xen-only default kernel is replaced by an\n"
                            "installed generic one; 70-persistent-net.rules is emptied and its generator masked;\n"
                            "static network configs become DHCP and pinned MAC addresses are dropped (ifcfg,\n"
                            "interfaces, netplan, NetworkManager; the default routes of an ifcfg made DHCP are\n"
                            "commented out in route-IF, ifroute-IF and SUSE's routes); a config naming eth<N> gets\n"
                            "net.ifnames=0 on a guest with predictable NIC names, and a lone netplan NIC keyed by\n"
                            "the old hypervisor's PCI name (ens192) is matched by name \"en*\" instead. With\n"
                            "--network keep, static addresses and their routes stay and only the pinned MACs and\n"
                            "NIC names are fixed; with --network none (or --no-network) the network configs and\n"
                            "NIC naming stay as they are (70-persistent-net.rules is still emptied).\n\n"
                            "Initramfs: for every kernel a boot entry boots whose initramfs lacks virtio_blk or\n"
                            "virtio_pci, one cpio segment is appended to that image (the kernel unpacks stacked\n"
                            "archives in order) holding the guest's own module files with their dependencies from\n"
                            "its modules.dep, the module index rebuilt by the host's depmod, and what the image's\n"
                            "flavour needs to load them before it waits for root: /conf/modules (initramfs-tools),\n"
                            "/etc/cmdline.d rd.driver.pre= (dracut), rdloaddriver= on the boot entries (RHEL 6's\n"
                            "dracut 004), insmod lines before mkrootdev in /init (RHEL 5's nash). The guest's\n"
                            "config is set to keep them (/etc/initramfs-tools/modules, /etc/dracut.conf.d,\n"
                            "/etc/modprobe.conf). Images are written last, all or nothing, after checking the room\n"
                            "on /boot; an image of another flavour, or ending in an lz4/bzip2 archive, is reported\n"
                            "and left alone. --dry-run lists the modules and files each image would get;\n"
                            "--no-initramfs leaves every image as it is.\n\n"
                            "Warnings (never silent): virtio drivers missing from a kernel or its initrd, with the\n"
                            "command to run in the guest; cloud-init missing; no boot loader recognised; more than\n"
                            "one disk referenced. Every change is printed as a unified diff. A second run finds\n"
                            "nothing to change.\n\n"
                            "Exactly one of --dry-run (print, change nothing), --in-place (edit SOURCE; qcow2 and\n"
                            "raw images, or a folder) or -o OUTPUT (write a new image with the fixups; SOURCE is\n"
                            "never modified) is required. Exit status: 0 on success (warnings included), 1 when\n"
                            "the guest cannot be read or written, 2 for bad usage.");
                        a->image.add_to(sub);
                        sub.add_flag("--dry-run", a->dry_run, "Print the changes and warnings; change nothing");
                        sub.add_flag("--in-place", a->in_place, "Edit SOURCE itself (qcow2, raw, or a folder)");
                        sub.add_option("-o,--output", a->output, "Write the fixed guest to this new image");
                        sub.add_option("-O,--target-format", a->target_format, "Format of OUTPUT")
                            ->check(CLI::IsMember({"qcow2", "raw"}))
                            ->default_val("qcow2");
                        sub.add_flag("--overwrite", a->overwrite, "Replace OUTPUT if it exists");
                        a->fixup.add_to(sub);
                        sub.add_flag("--output-json", a->output_json, "Print changes and warnings as JSON");
                        sub.add_option("SOURCE", a->sources,
                                       "Disk image or guest folder; several disk images for a guest on several "
                                       "disks (in the order the guest names them; -o is then a folder)")
                            ->required();
                        return [a] {
                          a->source = a->sources.empty() ? std::string() : a->sources[0];
                          return run_fixup(*a);
                        };
                      }});

}  // namespace
}  // namespace vdkit::cli
