// `vdkit map`: the image's extents (data, zero, hole), merged, in a shape close to `qemu-img map`.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "blockcore/layers/device_stack.h"
#include "cli/command.h"

namespace vdkit::cli {
namespace {

struct MapArgs {
  ImageOptions image;
  std::string output = "human";
  std::string lv;
  std::vector<std::string> lv_disks;
  std::string path;
};

// Asks for extents in bounded windows so a huge sparse image never builds a huge vector at once.
constexpr uint64_t kMapWindow = 1ull << 34;

int run_map(const MapArgs& a) {
  StackSpec spec;
  spec.source = a.path;
  spec.open = a.image.open_options();
  spec.lv = a.lv;
  spec.lv_disks = a.lv_disks;
  spec.labels.lv = "--lv " + a.lv;
  auto stack = open_device_stack(spec);
  if (!stack.ok()) return fail("map", stack.status());
  warn("map", chain_warnings(stack->source_info));
  BlockDevice& d = *stack->top;
  bool json = a.output == "json";
  if (json) std::printf("[");
  else std::printf("%-20s %-20s %s\n", "Offset", "Length", "Type");
  bool first = true;
  Extent pending{0, 0, ExtentType::kData};
  auto emit = [&](const Extent& e) {
    bool data = e.type == ExtentType::kData;
    if (json) {
      std::printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": 0, \"present\": %s, \"zero\": %s, \"data\": %s }",
                  first ? "\n" : ",\n", static_cast<unsigned long long>(e.offset),
                  static_cast<unsigned long long>(e.length), e.type == ExtentType::kHole ? "false" : "true",
                  data ? "false" : "true", data ? "true" : "false");
    } else {
      std::printf("0x%-18llx 0x%-18llx %s\n", static_cast<unsigned long long>(e.offset),
                  static_cast<unsigned long long>(e.length), to_string(e.type));
    }
    first = false;
  };
  for (uint64_t pos = 0; pos < d.size();) {
    uint64_t len = std::min(kMapWindow, d.size() - pos);
    std::vector<Extent> ex;
    Status st = d.extents(pos, len, ex);
    if (!st.ok()) {
      if (json) std::printf("\n]\n");
      return fail("map", st);
    }
    for (const auto& e : ex) {
      if (pending.length && pending.type == e.type && pending.offset + pending.length == e.offset) {
        pending.length += e.length;
      } else {
        if (pending.length) emit(pending);
        pending = e;
      }
    }
    pos += len;
  }
  if (pending.length) emit(pending);
  if (json) std::printf("\n]\n");
  return kExitOk;
}

CommandRegistrar reg({"map", "List an image's extents: data, zero and hole runs",
                      [](CLI::App& sub) -> std::function<int()> {
                        auto a = std::make_shared<MapArgs>();
                        sub.description(
                            "List the extents of the disk an image shows, merged: runs of data, zero (recorded\n"
                            "as zeros) and hole (stored nowhere in the chain). Both zero and hole read as zeros.\n"
                            "--output=json prints the shape of `qemu-img map --output=json` (start, length,\n"
                            "depth, present, zero, data), so scripts written for it read ours.\n"
                            "--lv VG/LV maps one LVM2 logical volume instead (offsets inside the LV), read through\n"
                            "its segments from the PVs on the disk; `vdkit info` shows where those segments lie.\n"
                            "Exit status: 0 on success, 1 for an image that cannot be read, 2 for bad usage.");
                        a->image.add_to(sub);
                        sub.add_option("--output", a->output, "Output format: human, or json (qemu-img map's shape)")
                            ->check(CLI::IsMember({"human", "json"}))
                            ->default_val("human");
                        sub.add_option("--lv", a->lv, "Map logical volume LV of volume group VG (VG/LV)")
                            ->type_name("VG/LV");
                        sub.add_option("--disk", a->lv_disks,
                                       "With --lv: another disk of the same guest that holds PVs of the VG "
                                       "(repeatable)")
                            ->type_name("PATH");
                        sub.add_option("IMAGE", a->path, "The image to map")->required();
                        return [a] { return run_map(*a); };
                      }});

}  // namespace
}  // namespace vdkit::cli
