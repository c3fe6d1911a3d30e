// Fuzzes the driver segment's guest-input side: a guest's modules.dep (parse and closure) and an initramfs image
// (read, flavour, links, segment build). Input: modules.dep text, then "\n@@IMAGE@@\n", then the image bytes.
// Checks: every module path that comes out is safe (relative, no "..": it names a file in the guest and a name in
// the segment), every name in the segment is relative without "..", and the segment reads back as one archive.
#include <cstdlib>
#include <string>

#include "fixups/initramfs/segment.h"
#include "tests/fuzz/fuzz_rewriter.h"

namespace {

bool safe_name(const std::string& n) {
  if (n.empty() || n[0] == '/') return false;
  size_t start = 0;
  while (start <= n.size()) {
    size_t end = n.find('/', start);
    if (end == std::string::npos) end = n.size();
    if (n.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vdkit::fixups;
  std::string_view in = vdkit::fuzz::as_text(data, size);
  constexpr std::string_view kSep = "\n@@IMAGE@@\n";
  size_t cut = in.find(kSep);
  std::string_view dep_text = in.substr(0, cut);
  std::string_view image = cut == std::string_view::npos ? std::string_view{} : in.substr(cut + kSep.size());

  auto dep = ModulesDep::parse(dep_text, "6.1.0-1-amd64");
  if (!dep.ok()) {
    dep = ModulesDep::parse("kernel/drivers/virtio/virtio.ko:\nkernel/drivers/block/virtio_blk.ko: "
                            "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_pci.ko: "
                            "kernel/drivers/virtio/virtio.ko\n",
                            "6.1.0-1-amd64");
    if (!dep.ok()) abort();
  }
  auto closure = dep->closure({"virtio_pci", "virtio_blk"});
  if (closure.ok())
    for (const auto& m : *closure)
      if (!safe_module_path(m.path)) abort();
  if (image.empty()) return 0;
  GuestKernelModules guest{"6.1.0-1-amd64", std::move(*dep),
                           [](const std::string& rel) -> vdkit::Result<std::string> {
                             // The builder must check every name before reading (the index inputs are fixed).
                             if (!safe_module_path(rel) && rel != "modules.order" && rel != "modules.builtin" &&
                                 rel != "modules.builtin.modinfo")
                               abort();
                             return "m " + rel;
                           }};
  auto seg = build_driver_segment(
      image, {"virtio_pci", "virtio_blk"}, guest,
      [](const std::string&, const std::map<std::string, std::string>& files)
          -> vdkit::Result<std::map<std::string, std::string>> {
        for (const auto& [rel, body] : files)
          if (!safe_name(rel)) abort();
        return std::map<std::string, std::string>{{"modules.dep", "x\n"}};
      });
  if (!seg.ok() || seg->segment.empty()) return 0;
  for (const auto& f : seg->files)
    if (!safe_name(f)) abort();
  auto back = read_initramfs(seg->segment);
  if (!back.ok() || back->segments.size() != 1) abort();
  return 0;
}
