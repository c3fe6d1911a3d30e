// The read and extents walk shared by the drivers that map a disk in runs over their file and a parent.
#include "blockcore/sources/mapped_runs.h"

#include <algorithm>
#include <cstring>

#include "blockcore/base/bytes.h"

namespace vdkit {

void append_run(std::vector<MappedRun>& out, const MappedRun& r) {
  if (!out.empty()) {
    MappedRun& last = out.back();
    if (last.offset + last.length == r.offset && last.kind == r.kind &&
        (r.kind != RunKind::kStored || last.host + last.length == r.host)) {
      last.length += r.length;
      return;
    }
  }
  out.push_back(r);
}

Status read_mapped_runs(const std::vector<MappedRun>& runs, uint64_t offset, std::span<uint8_t> buf, File& file,
                        BlockDevice* store, BlockDevice* parent) {
  std::vector<IoRequest> reqs;
  for (const MappedRun& r : runs) {
    uint8_t* dst = buf.data() + (r.offset - offset);
    if (r.kind == RunKind::kStored && store)
      VDKIT_RETURN_IF_ERROR(store->read(r.host, {dst, r.length}));
    else if (r.kind == RunKind::kStored)
      reqs.push_back(IoRequest{file.fd(), dst, r.length, r.host, false, 0});
    else if (r.kind == RunKind::kZero || !parent)
      std::memset(dst, 0, r.length);
  }
  if (!reqs.empty()) {
    VDKIT_RETURN_IF_ERROR(file.Submit(reqs));
    for (const IoRequest& q : reqs)
      if (q.result < 0 || static_cast<size_t>(q.result) != q.len)
        return Status::IoError("'" + file.path() + "': reading " + std::to_string(q.len) + " bytes at offset " +
                               hex(q.offset) + " came up short (the file shrank?)");
  }
  if (!parent) return Status::Ok();
  const uint64_t psize = parent->size();
  for (const MappedRun& r : runs) {
    if (r.kind != RunKind::kAbsent) continue;
    std::span<uint8_t> out = buf.subspan(r.offset - offset, r.length);
    const uint64_t n = r.offset < psize ? std::min<uint64_t>(r.length, psize - r.offset) : 0;
    if (n) VDKIT_RETURN_IF_ERROR(parent->read(r.offset, out.subspan(0, n)));
    if (n < r.length) std::memset(out.data() + n, 0, r.length - n);
  }
  return Status::Ok();
}

Status mapped_run_extents(const std::vector<MappedRun>& runs, BlockDevice* parent, std::vector<Extent>& out) {
  for (const MappedRun& r : runs) {
    if (r.kind == RunKind::kStored) {
      append_extent(out, {r.offset, r.length, ExtentType::kData});
    } else if (r.kind == RunKind::kZero) {
      append_extent(out, {r.offset, r.length, ExtentType::kZero});
    } else if (parent) {
      const uint64_t psize = parent->size();
      const uint64_t n = r.offset < psize ? std::min(r.length, psize - r.offset) : 0;
      if (n) VDKIT_RETURN_IF_ERROR(parent->extents(r.offset, n, out));
      if (n < r.length) append_extent(out, {r.offset + n, r.length - n, ExtentType::kHole});
    } else {
      append_extent(out, {r.offset, r.length, ExtentType::kHole});
    }
  }
  return Status::Ok();
}

}  // namespace vdkit
