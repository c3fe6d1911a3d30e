// nbdkit-vdkit-plugin: the nbdkit callbacks, each a noexcept adapter from the NBD request to the exported BlockDevice.
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "blockcore/base/caught_exception.h"
#include "blockcore/env/env_settings.h"
#include "blockcore/sources/image.h"
#include "nbd-plugin/export.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

namespace vdkit::nbd {
namespace {

// One export for the whole server, shared by every connection: that is what
// makes flush consistent across connections (multi-conn) in every write mode.
ExportConfig g_config;
Export g_export;
ForkSafeEngine g_engine;

// Most read and write failures are not the client's doing: corrupt metadata
// (EINVAL inside blockcore) must not look like "invalid request" on the wire.
int client_errno(const Status& st) {
  switch (st.code()) {
    case ENOMEM:
    case ENOSPC:
    case EROFS:
    case EPERM:
    case ENOTSUP:
      return st.code();
    default:
      return EIO;
  }
}

// Reports st to nbdkit (log line + errno for the client). Returns -1 for the callback.
int report(const char* what, const Status& st) {
  nbdkit_error("%s: %s", what, st.message().c_str());
  nbdkit_set_error(client_errno(st));
  return -1;
}

// Runs fn, turning any C++ exception (bad_alloc from a huge request) into an
// nbdkit error: nothing may unwind through nbdkit's C frames.
template <typename Fn>
int guarded(const char* what, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (...) {
    CaughtException e = describe_caught_exception();
    if (e.code == ENOMEM) nbdkit_error("%s: %s", what, e.message);
    else nbdkit_error("%s: internal error: %s", what, e.message);
    nbdkit_set_error(e.code);
  }
  return -1;
}

BlockDevice& dev() { return *g_export.device; }

// ---- configuration ----

constexpr const char* kParams =
    "file,allow-external-paths,format,xva-disk,writable,overlay,partition,lv,disk,cache,sparsify";

int parse_bool_param(const char* key, const char* value, bool& out) {
  int r = nbdkit_parse_bool(value);
  if (r == -1) return -1;  // nbdkit has reported the bad value
  out = r != 0;
  (void)key;
  return 0;
}

int vdkit_config(const char* key, const char* value) noexcept {
  return guarded("config", [&] {
    std::string k = key;
    if (k == "file") {
      if (!g_config.file.empty()) {
        nbdkit_error("file= given twice ('%s' and '%s'); vdkit exports one source", g_config.file.c_str(), value);
        return -1;
      }
      // nbdkit changes to / when it daemonizes: keep an absolute path.
      char* abs = nbdkit_absolute_path(value);
      if (!abs) return -1;
      g_config.file = abs;
      std::free(abs);
    } else if (k == "allow-external-paths") {
      return parse_bool_param(key, value, g_config.allow_external_paths);
    } else if (k == "format") {
      std::string v = value;
      const auto& known = known_formats();
      if (std::find(known.begin(), known.end(), v) == known.end()) {
        nbdkit_error("format=%s: unknown format (known: %s; leave it out to probe the content)", value,
                     known_formats_text().c_str());
        return -1;
      }
      g_config.format = v;
    } else if (k == "xva-disk") {
      char* end = nullptr;
      errno = 0;
      long n = std::strtol(value, &end, 10);
      if (errno || !*value || *end || n < 0 || n > kMaxXvaDiskNumber) {
        nbdkit_error("xva-disk=%s: expected a disk number from 0 to %d", value, kMaxXvaDiskNumber);
        return -1;
      }
      g_config.xva_disk = static_cast<size_t>(n);
    } else if (k == "writable") {
      std::string v = value;
      if (v == "false") g_config.write_mode = WriteMode::kReadOnly;
      else if (v == "overlay") g_config.write_mode = WriteMode::kOverlay;
      else if (v == "in-place") g_config.write_mode = WriteMode::kInPlace;
      else {
        nbdkit_error("writable=%s: expected false, overlay or in-place", value);
        return -1;
      }
      g_config.write_mode_given = true;
    } else if (k == "overlay") {
      if (!*value) {
        nbdkit_error("overlay= needs a path for the new qcow2 overlay file");
        return -1;
      }
      char* abs = nbdkit_absolute_path(value);
      if (!abs) return -1;
      g_config.overlay_path = abs;
      std::free(abs);
    } else if (k == "partition") {
      char* end = nullptr;
      errno = 0;
      long n = std::strtol(value, &end, 10);
      if (errno || !*value || *end || n < 1 || n > kMaxPartitionNumber) {
        nbdkit_error("partition=%s: expected a partition number from 1 to %d", value, kMaxPartitionNumber);
        return -1;
      }
      g_config.partition = static_cast<int>(n);
    } else if (k == "sparsify") {
      return parse_bool_param(key, value, g_config.sparsify);
    } else if (k == "lv") {
      if (!std::strchr(value, '/')) {
        nbdkit_error("lv=%s: expected VG/LV, such as lv=ubuntu-vg/ubuntu-lv", value);
        return -1;
      }
      g_config.lv = value;
    } else if (k == "disk") {
      char* abs = nbdkit_absolute_path(value);
      if (!abs) return -1;
      g_config.lv_disks.push_back(abs);
      std::free(abs);
    } else if (k == "cache") {
      int64_t n = nbdkit_parse_size(value);
      if (n < 0) {
        nbdkit_error("cache=%s: expected a size in bytes, such as 256M or 1G", value);
        return -1;
      }
      // Named limit: the grain cache may not ask for more than the machine has.
      long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
      uint64_t phys = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
      if (phys && static_cast<uint64_t>(n) > phys) {
        nbdkit_error("cache=%s: %lld bytes is more than this machine's memory (%llu bytes)", value,
                     static_cast<long long>(n), static_cast<unsigned long long>(phys));
        return -1;
      }
      g_config.cache_bytes = static_cast<size_t>(n);
    } else {
      nbdkit_error("unknown parameter '%s' (vdkit takes %s)", key, kParams);
      return -1;
    }
    return 0;
  });
}

int vdkit_config_complete() noexcept {
  return guarded("config", [] {
    Status st = validate(g_config);
    if (!st.ok()) {
      nbdkit_error("%s", st.message().c_str());
      return -1;
    }
    return 0;
  });
}

// Opens and checks the image before nbdkit forks, so a bad image stops the
// server at start-up with the reason. No thread or ring exists yet: files use
// pread until after_fork, and the drivers start worker threads on first use.
int vdkit_get_ready() noexcept {
  return guarded("opening the export", [] {
    auto ex = open_export(g_config, &g_engine);
    if (!ex.ok()) {
      nbdkit_error("%s", ex.status().message().c_str());
      return -1;
    }
    g_export = std::move(*ex);
    nbdkit_debug("vdkit: exporting %s", g_export.description.c_str());
    if (!g_export.sparsify_report.empty()) nbdkit_debug("vdkit: sparsify:\n%s", g_export.sparsify_report.c_str());
    return 0;
  });
}

int vdkit_after_fork() noexcept {
  return guarded("after fork", [] {
    // The environment is read once, here: choosing the engine probes an io_uring ring, and no ring may exist
    // before nbdkit forks.
    auto io = apply_env_settings(read_env_settings());
    if (!io.ok()) {
      nbdkit_error("%s", io.status().message().c_str());
      return -1;
    }
    g_engine.after_fork();
    return 0;
  });
}

// Runs once after the last connection: a qcow2 overlay or an in-place source
// must reach the disk complete before nbdkit exits.
void vdkit_cleanup() noexcept {
  guarded("closing the export", [] {
    if (g_export.device) {
      Status st = g_export.device->flush();
      if (!st.ok()) nbdkit_error("flushing at exit: %s", st.message().c_str());
      g_export.device.reset();
    }
    return 0;
  });
}

void vdkit_dump_plugin() noexcept {
  std::printf("vdkit_version=%s\n", VDKIT_VERSION);
  std::string formats = known_formats_text();
  formats.erase(std::remove(formats.begin(), formats.end(), ' '), formats.end());
  std::printf("vdkit_formats=%s\n", formats.c_str());
  std::printf("vdkit_parameters=%s\n", kParams);
  std::printf("vdkit_writable=false,overlay,in-place\n");
  std::printf("vdkit_block_status=base:allocation\n");
  std::fflush(stdout);
}

// ---- per connection ----

struct Handle {
  bool readonly;
};

void* vdkit_open(int readonly) noexcept {
  try {
    return new Handle{readonly != 0};
  } catch (...) {
    nbdkit_error("open: out of memory");
    nbdkit_set_error(ENOMEM);
    return nullptr;
  }
}

void vdkit_close(void* handle) noexcept { delete static_cast<Handle*>(handle); }

int64_t vdkit_get_size(void*) noexcept { return static_cast<int64_t>(dev().size()); }

const char* vdkit_export_description(void*) noexcept { return g_export.description.c_str(); }

int vdkit_block_size(void*, uint32_t* minimum, uint32_t* preferred, uint32_t* maximum) noexcept {
  *minimum = 1;
  *preferred = g_export.preferred_block;
  *maximum = 0xffffffff;
  return 0;
}

int vdkit_can_write(void*) noexcept { return g_config.write_mode != WriteMode::kReadOnly && dev().caps().writable; }
int vdkit_can_flush(void*) noexcept { return 1; }
int vdkit_is_rotational(void*) noexcept { return 0; }
int vdkit_can_trim(void*) noexcept { return vdkit_can_write(nullptr) && dev().caps().can_trim; }
// When the device cannot zero, nbdkit writes zeros with pwrite instead.
int vdkit_can_zero(void*) noexcept { return vdkit_can_write(nullptr) && dev().caps().can_zero; }
// Zeroing the memory overlay only records a range; other devices may write.
int vdkit_can_fast_zero(void*) noexcept {
  return g_config.write_mode == WriteMode::kOverlay && g_config.overlay_path.empty();
}
int vdkit_can_fua(void*) noexcept { return NBDKIT_FUA_NATIVE; }
int vdkit_can_multi_conn(void*) noexcept { return dev().caps().flush_consistent; }
int vdkit_can_extents(void*) noexcept { return 1; }
int vdkit_can_cache(void*) noexcept { return NBDKIT_CACHE_NATIVE; }

int vdkit_pread(void*, void* buf, uint32_t count, uint64_t offset, uint32_t) noexcept {
  return guarded("read", [&] {
    Status st = dev().read(offset, std::span<uint8_t>(static_cast<uint8_t*>(buf), count));
    return st.ok() ? 0 : report("read", st);
  });
}

// FUA: the write is durable when we answer, so flush after it.
int finish_write(const char* what, Status st, uint32_t flags) {
  if (st.ok() && (flags & NBDKIT_FLAG_FUA)) st = dev().flush();
  return st.ok() ? 0 : report(what, st);
}

int vdkit_pwrite(void*, const void* buf, uint32_t count, uint64_t offset, uint32_t flags) noexcept {
  return guarded("write", [&] {
    return finish_write("write", dev().write(offset, std::span<const uint8_t>(static_cast<const uint8_t*>(buf), count)),
                        flags);
  });
}

int vdkit_zero(void*, uint32_t count, uint64_t offset, uint32_t flags) noexcept {
  return guarded("zero", [&] { return finish_write("zero", dev().zero(offset, count), flags); });
}

int vdkit_trim(void*, uint32_t count, uint64_t offset, uint32_t flags) noexcept {
  return guarded("trim", [&] { return finish_write("trim", dev().trim(offset, count), flags); });
}

int vdkit_flush(void*, uint32_t) noexcept {
  return guarded("flush", [&] {
    Status st = dev().flush();
    return st.ok() ? 0 : report("flush", st);
  });
}

int vdkit_cache(void*, uint32_t count, uint64_t offset, uint32_t) noexcept {
  return guarded("cache", [&] {
    Status st = dev().prefetch(offset, count);
    return st.ok() ? 0 : report("cache", st);
  });
}

int vdkit_extents(void*, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents* out) noexcept {
  return guarded("block status", [&] {
    std::vector<Extent> ex;
    Status st = dev().extents(offset, count, ex);
    if (!st.ok()) return report("block status", st);
    for (const auto& e : ex) {
      uint32_t type = e.type == ExtentType::kData   ? 0
                      : e.type == ExtentType::kZero ? NBDKIT_EXTENT_ZERO
                                                    : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
      if (nbdkit_add_extent(out, e.offset, e.length, type) == -1) return -1;
      if (flags & NBDKIT_FLAG_REQ_ONE) break;
    }
    return 0;
  });
}

constexpr const char* kConfigHelp =
    "file=<IMAGE>            (required) The source disk: raw, qcow2 or VMDK (any\n"
    "                        createType), probed by content. Backing chains, VMDK\n"
    "                        descriptors, split extents and snapshot parents resolve\n"
    "                        as in `vdkit info`.\n"
    "allow-external-paths=BOOL  Follow backing, extent and data-file names that are\n"
    "                        absolute or leave the image's folder (default false).\n"
    "format=raw|qcow2|vmdk|vhd|vhdx|xva  Use this format instead of probing the content.\n"
    "xva-disk=N              For an XVA export: serve disk N (from 0, in the VM's\n"
    "                        device order, as `vdkit info` lists them), not disk 0.\n"
    "writable=false|overlay|in-place\n"
    "                        false (default): a read-only export. overlay: writes\n"
    "                        go to a copy-on-write layer, in memory for the life of\n"
    "                        the server unless overlay= is given; the source is\n"
    "                        never modified. in-place: writes go to the source\n"
    "                        itself, for formats vdkit can write (raw, qcow2).\n"
    "overlay=<PATH>          Keep written blocks in a new qcow2 file whose backing\n"
    "                        file is the source, readable later by qemu-img and\n"
    "                        vdkit. Implies writable=overlay. PATH must not exist.\n"
    "partition=N             Export partition N (1-based, as Linux numbers them) of\n"
    "                        the disk's MBR or GPT table instead of the whole disk.\n"
    "lv=VG/LV                Export logical volume LV of LVM2 volume group VG, read\n"
    "                        from the PVs on the disk (whole disk or partitions)\n"
    "                        without activating anything; linear and striped LVs.\n"
    "                        Writes follow writable= as for the whole disk.\n"
    "disk=<PATH>             With lv=: another disk of the same guest holding PVs\n"
    "                        of the VG (repeatable). Writes to it follow writable=,\n"
    "                        except that overlay= covers only file=.\n"
    "cache=SIZE              Memory for inflated grains and clusters, which serves\n"
    "                        repeated small reads of compressed images (default 64M).\n"
    "sparsify=BOOL           Read what the guest does not use as zeros and report it\n"
    "                        as holes in block status, never reading it: free blocks\n"
    "                        of clean ext2/3/4, XFS and Btrfs file systems, swap\n"
    "                        after its header, LVM extents no LV uses and the free\n"
    "                        blocks of linear/striped LVs on the disk, space outside\n"
    "                        the partitions (not the boot-loader gap, MBR, EBRs or\n"
    "                        GPTs). With lv=: the LV's own free blocks. Unknown,\n"
    "                        unclean and hibernated volumes are exported whole.\n"
    "                        Needs writable=false.";

}  // namespace
}  // namespace vdkit::nbd

namespace {

using namespace vdkit::nbd;

nbdkit_plugin make_plugin() {
  nbdkit_plugin p{};
  p.name = "vdkit";
  p.longname = "vdkit: VMDK, qcow2 and raw disks as raw NBD exports";
  p.version = VDKIT_VERSION;
  p.description = "Export a raw, qcow2 or VMDK disk (with its backing chain) as a raw disk, with extents";
  p.config = vdkit_config;
  p.config_complete = vdkit_config_complete;
  p.config_help = kConfigHelp;
  p.magic_config_key = "file";
  p.get_ready = vdkit_get_ready;
  p.after_fork = vdkit_after_fork;
  p.cleanup = vdkit_cleanup;
  p.dump_plugin = vdkit_dump_plugin;
  p.open = vdkit_open;
  p.close = vdkit_close;
  p.get_size = vdkit_get_size;
  p.export_description = vdkit_export_description;
  p.block_size = vdkit_block_size;
  p.can_write = vdkit_can_write;
  p.can_flush = vdkit_can_flush;
  p.is_rotational = vdkit_is_rotational;
  p.can_trim = vdkit_can_trim;
  p.can_zero = vdkit_can_zero;
  p.can_fast_zero = vdkit_can_fast_zero;
  p.can_fua = vdkit_can_fua;
  p.can_multi_conn = vdkit_can_multi_conn;
  p.can_extents = vdkit_can_extents;
  p.can_cache = vdkit_can_cache;
  p.pread = vdkit_pread;
  p.pwrite = vdkit_pwrite;
  p.zero = vdkit_zero;
  p.trim = vdkit_trim;
  p.flush = vdkit_flush;
  p.cache = vdkit_cache;
  p.extents = vdkit_extents;
  // Errors set with nbdkit_set_error; errno itself is not meaningful after our callbacks.
  p.errno_is_preserved = 0;
  return p;
}

nbdkit_plugin plugin = make_plugin();

}  // namespace

NBDKIT_REGISTER_PLUGIN(plugin)
