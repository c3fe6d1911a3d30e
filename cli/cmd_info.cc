// `vdkit info`: format, sizes, layout and the backing chain of an image, for people and (as JSON) scripts.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/layers/volumes.h"
#include "cli/command.h"
#include "fixups/volume_report.h"

namespace vdkit::cli {
namespace {

nlohmann::json info_json(const ImageInfo& i) {
  nlohmann::json j;
  j["filename"] = i.filename;
  j["format"] = i.format;
  if (!i.subformat.empty()) j["subformat"] = i.subformat;
  j["virtual-size"] = i.virtual_size;
  j["actual-size"] = i.actual_size;
  if (i.cluster_size) j["cluster-size"] = i.cluster_size;
  if (!i.compression.empty()) j["compression"] = i.compression;
  if (i.version) j["version"] = i.version;
  j["dirty-flag"] = i.dirty;
  j["corrupt"] = i.corrupt;
  if (!i.files.empty()) j["files"] = i.files;
  if (!i.backing_filename.empty()) {
    j["backing-filename"] = i.backing_filename;
    if (!i.backing_resolved.empty()) j["full-backing-filename"] = i.backing_resolved;
    if (!i.backing_format.empty()) j["backing-filename-format"] = i.backing_format;
  }
  if (!i.warnings.empty()) j["warnings"] = i.warnings;
  if (!i.specific.empty()) {
    nlohmann::json s = nlohmann::json::object();
    for (const auto& [k, v] : i.specific) s[k] = v;
    j["format-specific"] = s;
  }
  return j;
}

void print_human(const ImageInfo& i) {
  std::printf("image: %s\n", i.filename.c_str());
  std::printf("file format: %s\n", i.format.c_str());
  if (!i.subformat.empty()) std::printf("subformat: %s\n", i.subformat.c_str());
  std::printf("virtual size: %s (%llu bytes)\n", human_size(i.virtual_size).c_str(),
              static_cast<unsigned long long>(i.virtual_size));
  std::printf("disk size: %s\n", human_size(i.actual_size).c_str());
  if (i.cluster_size)
    std::printf("%s: %llu\n", i.format == "vmdk" ? "grain size" : "cluster_size",
                static_cast<unsigned long long>(i.cluster_size));
  if (i.version) std::printf("version: %d\n", i.version);
  if (!i.compression.empty()) std::printf("compression: %s\n", i.compression.c_str());
  if (!i.backing_filename.empty()) {
    std::printf("backing file: %s", i.backing_filename.c_str());
    if (!i.backing_resolved.empty() && i.backing_resolved != i.backing_filename)
      std::printf(" (actual path: %s)", i.backing_resolved.c_str());
    std::printf("\n");
    if (!i.backing_format.empty()) std::printf("backing file format: %s\n", i.backing_format.c_str());
  }
  for (const auto& f : i.files) std::printf("file: %s\n", f.c_str());
  if (i.dirty) std::printf("dirty: yes\n");
  if (i.corrupt) std::printf("corrupt: yes\n");
  for (const auto& [k, v] : i.specific) std::printf("%s: %s\n", k.c_str(), v.c_str());
}

struct InfoArgs {
  ImageOptions image;
  std::string output = "human";
  bool backing_chain = false;
  std::string path;
};

int run_info(const InfoArgs& a) {
  auto dev = open_image(a.path, a.image.open_options());
  if (!dev.ok()) return fail("info", dev.status());
  // LVM2 volume groups on the disk (whole or on its partitions); a disk that cannot be scanned is not an error here.
  std::shared_ptr<BlockDevice> disk(std::move(*dev));
  warn("info", chain_warnings(disk->info()));
  auto vgs = scan_volume_groups({{a.path, disk}});
  std::vector<const ImageInfo*> chain;
  for (const ImageInfo* i = &disk->info(); i; i = a.backing_chain ? i->backing.get() : nullptr) chain.push_back(i);
  if (a.output == "json") {
    nlohmann::json top = info_json(*chain[0]);
    if (vgs.ok() && !vgs->vgs.empty()) top["volume-groups"] = volume_groups_json(*vgs);
    if (vgs.ok() && !vgs->warnings.empty()) top["lvm-warnings"] = vgs->warnings;
    if (!vgs.ok()) top["lvm-warnings"] = {vgs.status().message()};
    if (a.backing_chain) {
      nlohmann::json arr = nlohmann::json::array();
      arr.push_back(std::move(top));
      for (size_t k = 1; k < chain.size(); ++k) arr.push_back(info_json(*chain[k]));
      std::cout << arr.dump(4) << "\n";
    } else {
      std::cout << top.dump(4) << "\n";
    }
    return kExitOk;
  }
  for (size_t k = 0; k < chain.size(); ++k) {
    if (k) std::printf("\n");
    print_human(*chain[k]);
    if (k == 0 && vgs.ok() && (!vgs->vgs.empty() || !vgs->warnings.empty()))
      std::printf("volume groups:\n%s", volume_groups_text(*vgs, "  ").c_str());
    if (k == 0 && !vgs.ok()) std::printf("volume groups: not read: %s\n", vgs.status().message().c_str());
  }
  return kExitOk;
}

CommandRegistrar reg({"info", "Show an image's format, sizes, layout and backing chain",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<InfoArgs>();
                        sub.description(
                            "Show what an image is: format and subformat (VMDK createType), virtual size, bytes\n"
                            "allocated on disk, cluster or grain size, compression, version, backing or parent\n"
                            "chain, extent files and dirty/corrupt flags. The format is found from the content.\n"
                            "LVM2 volume groups on the disk or its partitions are listed with their PVs (where\n"
                            "each was found, unused space) and LVs (size, type, segments, PVs, and why one cannot\n"
                            "be opened: a segment type vdkit does not map, or a PV on another disk); JSON has\n"
                            "them under \"volume-groups\". Nothing is activated on the host.\n"
                            "Exit status: 0 on success, 1 for an image that cannot be read, 2 for bad usage.");
                        a->image.add_to(sub);
                        sub.add_option("--output", a->output, "Output format: human, or json for scripts")
                            ->check(CLI::IsMember({"human", "json"}))
                            ->default_val("human");
                        sub.add_flag("--backing-chain", a->backing_chain,
                                     "Show every image of the backing/parent chain, top first");
                        sub.add_option("IMAGE", a->path, "The image to describe")->required();
                        return [a] { return run_info(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
