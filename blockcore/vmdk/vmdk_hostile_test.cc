// Hostile VMDK input (after qemu-iotests 059/060/080/214): images made here by qemu-img or by hand, then poked.
// Each must give a clear error naming the field (asserted by errno and message), never a crash, hang or huge
// allocation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "blockcore/sources/image.h"
#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit {
namespace {

namespace fs = std::filesystem;

bool have_qemu_img() { return std::system("qemu-img --version >/dev/null 2>&1") == 0; }

class VmdkHostile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdkit-vmdk-hostile.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  void write_file(const std::string& name, const std::string& bytes) {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  std::vector<uint8_t> read_file(const std::string& name) {
    std::ifstream f(path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  void poke(const std::string& name, uint64_t off, const void* data, size_t len) {
    std::fstream f(path(name), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>(off));
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(len));
  }
  template <typename T>
  void poke_le(const std::string& name, uint64_t off, T v) {
    poke(name, off, &v, sizeof v);  // x86-64/arm64: little endian, as VMDK
  }
  template <typename T>
  T peek_le(const std::string& name, uint64_t off) {
    auto b = read_file(name);
    T v{};
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
  }

  // A 2 MiB raw of random bytes, converted by qemu-img into a VMDK of the given subformat.
  void make_vmdk(const std::string& name, const std::string& subformat, const std::string& extra = "") {
    std::string raw(2u << 20, '\0');
    std::mt19937 rng(7);
    for (size_t i = 0; i < raw.size() / 2; ++i) raw[i] = static_cast<char>(rng());  // 1 MiB random, 1 MiB zeros
    write_file("src.raw", raw);
    std::string cmd = "qemu-img convert -q -O vmdk -o subformat=" + subformat + extra + " '" + path("src.raw") + "' '" +
                      path(name) + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

  Result<BlockDevicePtr> open(const std::string& name, OpenOptions o = {}) { return open_image(path(name), o); }

  // Opens name and reads the whole disk.
  Status open_and_read(const std::string& name) {
    auto dev = open(name);
    if (!dev.ok()) return dev.status();
    std::vector<uint8_t> buf((*dev)->size());
    return (*dev)->read(0, buf);
  }

  uint64_t gd_entry0_gt(const std::string& name) {
    uint64_t gd = peek_le<uint64_t>(name, 56) * 512;
    return static_cast<uint64_t>(peek_le<uint32_t>(name, gd)) * 512;
  }

  std::string dir_;
};

#define EXPECT_ERROR(expr, want_code, needle)                                  \
  do {                                                                         \
    auto st_ = (expr);                                                         \
    ASSERT_FALSE(st_.ok()) << "expected an error containing: " << (needle);    \
    EXPECT_EQ(st_.code(), (want_code)) << st_.message();                       \
    EXPECT_NE(st_.message().find(needle), std::string::npos) << st_.message(); \
  } while (0)

Status status_of(const Result<BlockDevicePtr>& r) { return r.ok() ? Status::Ok() : r.status(); }

// A descriptor over one flat extent named `extent`.
std::string flat_descriptor(const std::string& extent, const std::string& extra = "") {
  return "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\n" + extra +
         "RW 2048 FLAT \"" + extent + "\" 0\n";
}

TEST_F(VmdkHostile, ExtentNamesThatAreProtocolsOrLeaveTheFolderAreRefused) {
  write_file("d-flat.vmdk", std::string(1u << 20, 'x'));
  struct Case {
    const char* name;
    int code;
    const char* needle;
  } cases[] = {{"json:{file.filename:/etc/passwd}", EPERM, "json:"},
               {"nbd://x", EPERM, "protocol"},
               {"/etc/passwd", EPERM, "absolute path"},
               {"../x", EPERM, "leaves the folder"}};
  for (const auto& c : cases) {
    write_file("d.vmdk", flat_descriptor(c.name));
    EXPECT_ERROR(status_of(open("d.vmdk")), c.code, c.needle);
    auto st = status_of(open("d.vmdk"));
    EXPECT_NE(st.message().find("extent file"), std::string::npos) << st.message();
  }
  // --allow-external-paths lets an absolute name through (and then it is read as a flat file).
  write_file("d.vmdk", flat_descriptor(path("d-flat.vmdk")));
  OpenOptions o;
  o.allow_external_paths = true;
  EXPECT_TRUE(open("d.vmdk", o).ok());
  EXPECT_ERROR(status_of(open("d.vmdk")), EPERM, "--allow-external-paths");
}

TEST_F(VmdkHostile, DescriptorLargerThanOneMebibyteIsRefused) {
  std::string text = flat_descriptor("d-flat.vmdk");
  while (text.size() <= vmdk::kMaxDescriptorBytes) text += "# padding comment line to make the descriptor large\n";
  write_file("d.vmdk", text);
  EXPECT_ERROR(status_of(open("d.vmdk")), EINVAL, "kMaxDescriptorBytes");
}

TEST_F(VmdkHostile, EmbeddedDescriptorSizeOverTheLimitIsRefused) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("s.vmdk", "monolithicSparse");
  poke_le<uint64_t>("s.vmdk", 36, 4096);  // descriptorSize: 2 MiB
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "descriptorSize");
}

TEST_F(VmdkHostile, HeaderFieldsOutsideTheirLimits) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("good.vmdk", "monolithicSparse");
  auto good = read_file("good.vmdk");
  auto fresh = [&] { write_file("s.vmdk", std::string(good.begin(), good.end())); };
  fresh();
  ASSERT_TRUE(open_and_read("s.vmdk").ok());

  fresh();
  poke_le<uint32_t>("s.vmdk", 44, 0);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "numGTEsPerGT");
  fresh();
  poke_le<uint32_t>("s.vmdk", 44, 513);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "numGTEsPerGT");
  fresh();
  poke_le<uint64_t>("s.vmdk", 20, 0);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "grainSize");
  fresh();
  poke_le<uint64_t>("s.vmdk", 20, 3);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "grainSize");
  fresh();
  poke_le<uint64_t>("s.vmdk", 20, 1ull << 40);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "grainSize");
  fresh();
  poke_le<uint64_t>("s.vmdk", 12, ~0ull);  // capacity: sectors * 512 would overflow
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "capacity");
  fresh();
  poke_le<uint64_t>("s.vmdk", 12, 1ull << 40);  // capacity fine by itself, but its grain directory would be 64 MiB
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "kMaxGrainDirectoryBytes");
  fresh();
  poke_le<uint64_t>("s.vmdk", 56, 1u << 20);  // gdOffset: 512 MiB into a 1 MiB file
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "gdOffset");
  fresh();
  poke_le<uint32_t>("s.vmdk", 4, 4);
  EXPECT_ERROR(status_of(open("s.vmdk")), ENOTSUP, "version");
  fresh();
  uint8_t damaged = '\n';
  poke("s.vmdk", 75, &damaged, 1);  // '\r' of the newline test turned into '\n' by a text-mode copy
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "newline");
}

TEST_F(VmdkHostile, GrainTablesAndGrainsPastTheEndOfTheFile) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("good.vmdk", "monolithicSparse");
  auto good = read_file("good.vmdk");
  write_file("s.vmdk", std::string(good.begin(), good.end()));
  uint64_t gd = peek_le<uint64_t>("s.vmdk", 56) * 512;
  poke_le<uint32_t>("s.vmdk", gd, 0x7fffffff);
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "grain directory entry 0");

  write_file("s.vmdk", std::string(good.begin(), good.end()));
  uint64_t gt = gd_entry0_gt("s.vmdk");
  poke_le<uint32_t>("s.vmdk", gt, 0x7fffffff);
  auto dev = open("s.vmdk");
  ASSERT_TRUE(dev.ok()) << dev.status().message();  // tables are checked when read
  std::vector<uint8_t> buf(4096);
  EXPECT_ERROR((*dev)->read(0, buf), EINVAL, "grain table entry 0");
  std::vector<Extent> ex;
  EXPECT_ERROR((*dev)->extents(0, (*dev)->size(), ex), EINVAL, "past the end of the file");
}

TEST_F(VmdkHostile, StreamOptimizedMarkersAndDeflateDamage) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("good.vmdk", "streamOptimized");
  auto good = read_file("good.vmdk");
  auto fresh = [&] { write_file("s.vmdk", std::string(good.begin(), good.end())); };
  fresh();
  ASSERT_TRUE(open_and_read("s.vmdk").ok());
  uint64_t grain0 = static_cast<uint64_t>(peek_le<uint32_t>("s.vmdk", gd_entry0_gt("s.vmdk"))) * 512;

  // A grain marker whose compressed size runs past the end of the file.
  poke_le<uint32_t>("s.vmdk", grain0 + 8, 0x7ffff000);
  EXPECT_ERROR(open_and_read("s.vmdk"), EINVAL, "grain marker");
  // A compressed size inside the file but over the limit (twice the 64 KiB grain).
  fresh();
  poke_le<uint32_t>("s.vmdk", grain0 + 8, 2 * 65536 + 1);
  EXPECT_ERROR(open_and_read("s.vmdk"), EINVAL, "limit of 131072");
  // A zero compressed size.
  fresh();
  poke_le<uint32_t>("s.vmdk", grain0 + 8, 0);
  EXPECT_ERROR(open_and_read("s.vmdk"), EINVAL, "grain marker");
  // A damaged deflate stream: an error from read, not a crash.
  fresh();
  std::string junk(200, '\xff');
  poke("s.vmdk", grain0 + 12 + 2, junk.data(), junk.size());
  EXPECT_ERROR(open_and_read("s.vmdk"), EINVAL, "compressed grain 0");
}

TEST_F(VmdkHostile, StreamOptimizedFooterMissing) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("s.vmdk", "streamOptimized");
  poke_le<uint64_t>("s.vmdk", 56, vmdk::kGdAtEnd);  // "find the grain directory through the footer", but no footer
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "footer");
  // A footer whose own gdOffset again says "at end".
  auto bytes = read_file("s.vmdk");
  bytes.resize((bytes.size() + 511) / 512 * 512);
  std::vector<uint8_t> tail(1536, 0);
  uint64_t v = 1;
  std::memcpy(tail.data(), &v, 8);
  uint32_t type = 3;
  std::memcpy(tail.data() + 12, &type, 4);
  std::memcpy(tail.data() + 512, bytes.data(), 512);  // header copy, gdOffset still GD_AT_END
  bytes.insert(bytes.end(), tail.begin(), tail.end());
  write_file("s.vmdk", std::string(bytes.begin(), bytes.end()));
  EXPECT_ERROR(status_of(open("s.vmdk")), EINVAL, "footer field gdOffset");
}

TEST_F(VmdkHostile, ParentChainsThatLoopOrDoNotMatch) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("base.vmdk", "monolithicSparse");
  make_vmdk("x.vmdk", "monolithicSparse");
  auto delta = [](const std::string& hint, const std::string& pcid) {
    return "# Disk DescriptorFile\nversion=1\nCID=11111111\nparentCID=" + pcid +
           "\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"" + hint + "\"\nRW 4096 SPARSE \"x.vmdk\"\n";
  };
  // Its own parent.
  write_file("self.vmdk", delta("self.vmdk", "11111111"));
  EXPECT_ERROR(status_of(open("self.vmdk")), EINVAL, "loops");
  // a -> b -> a.
  write_file("a.vmdk", delta("b.vmdk", "11111111"));
  write_file("b.vmdk", delta("a.vmdk", "11111111"));
  EXPECT_ERROR(status_of(open("a.vmdk")), EINVAL, "loops");
  // parentCID that is not the parent's CID.
  write_file("d.vmdk", delta("base.vmdk", "12345678"));
  EXPECT_ERROR(status_of(open("d.vmdk")), EINVAL, "parentCID 12345678 does not match");
  // A parent named outside the folder, and a parentCID with no name.
  write_file("d.vmdk", delta("../base.vmdk", "12345678"));
  EXPECT_ERROR(status_of(open("d.vmdk")), EPERM, "parent disk");
  write_file("d.vmdk",
             "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=2\ncreateType=\"monolithicSparse\"\n"
             "RW 4096 SPARSE \"x.vmdk\"\n");
  EXPECT_ERROR(status_of(open("d.vmdk")), EINVAL, "parentFileNameHint");
}

TEST_F(VmdkHostile, DescriptorExtentsLargerThanTheirFiles) {
  if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed";
  make_vmdk("x.vmdk", "monolithicSparse");
  write_file("d.vmdk",
             "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n"
             "RW 8192 SPARSE \"x.vmdk\"\n");
  EXPECT_ERROR(status_of(open("d.vmdk")), EINVAL, "capacity");
  write_file("d.vmdk",
             "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n"
             "RW 4096 SPARSE \"missing.vmdk\"\n");
  EXPECT_ERROR(status_of(open("d.vmdk")), ENOENT, "missing.vmdk");
}

TEST_F(VmdkHostile, GrainDirectoriesOfAllExtentsTogetherAreBounded) {
  // A hand-made sparse header: 128 TiB of holes, so a 16 MiB grain directory of zeros (a sparse file).
  std::string h(512, '\0');
  auto put = [&](size_t off, uint64_t v, size_t n) { std::memcpy(h.data() + off, &v, n); };
  put(0, vmdk::kSparseMagic, 4);
  put(4, 1, 4);
  put(12, 1ull << 38, 8);  // capacity (sectors)
  put(20, 128, 8);         // grain
  put(44, 512, 4);         // GTEs per GT
  put(56, 1, 8);           // gdOffset
  write_file("big.vmdk", h);
  fs::resize_file(path("big.vmdk"), 17u << 20);
  auto dev = open("big.vmdk");
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_EQ((*dev)->size(), 1ull << 47);
  std::vector<uint8_t> buf(70000, 1);
  ASSERT_TRUE((*dev)->read((1ull << 46) - 5, buf).ok());
  EXPECT_EQ(std::count(buf.begin(), buf.end(), 0), 70000);
  // Three extents over it would hold 48 MiB of directories.
  write_file("d.vmdk",
             "# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentSparse\"\n"
             "RW 128 SPARSE \"big.vmdk\"\nRW 128 SPARSE \"big.vmdk\"\nRW 128 SPARSE \"big.vmdk\"\n");
  EXPECT_ERROR(status_of(open("d.vmdk")), EINVAL, "kMaxGrainDirectoryBytes");
}

// ---- seSparse, built byte by byte ------------------------------------------------------------------------
struct SeImage {
  std::vector<uint8_t> b;
  void put64(uint64_t off, uint64_t v) { std::memcpy(b.data() + off, &v, 8); }
};

// 4 MiB disk: GT entry 0 -> grain 0 ('A'), entry 1 zero, entry 2 -> grain 1 ('B'), entry 3 unmapped, rest unallocated.
SeImage make_sesparse() {
  SeImage s;
  s.b.assign(144 * 512, 0);
  s.put64(0x00, vmdk::kSeSparseMagic);
  s.put64(0x08, vmdk::kSeSparseVersion);
  s.put64(0x10, 8192);  // capacity
  s.put64(0x18, 8);     // grain size
  s.put64(0x20, 64);    // grain table size
  uint64_t regions[] = {1, 1, 2, 2, 4, 4, 8, 8, 16, 64, 0, 0, 0, 0, 80, 64};
  for (size_t i = 0; i < 16; ++i) s.put64(0x50 + 8 * i, regions[i]);
  s.put64(512, vmdk::kSeSparseVolatileMagic);
  s.put64(8 * 512, vmdk::kSeGdeAllocated | 0);  // GD entry 0 -> table 0
  uint64_t gt = 16 * 512;
  s.put64(gt + 0, vmdk::kSeGteAllocated | (0ull << 48));
  s.put64(gt + 8, vmdk::kSeGteZero);
  s.put64(gt + 16, vmdk::kSeGteAllocated | (1ull << 48));
  s.put64(gt + 24, vmdk::kSeGteUnmapped);
  std::memset(s.b.data() + 80 * 512, 'A', 4096);
  std::memset(s.b.data() + 88 * 512, 'B', 4096);
  return s;
}

const char kSeDescriptor[] =
    "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"seSparse\"\n"
    "RW 8192 SESPARSE \"se-sesparse.vmdk\"\n";

TEST_F(VmdkHostile, SeSparseReadsAndMapsAsBuilt) {
  auto s = make_sesparse();
  write_file("se-sesparse.vmdk", std::string(s.b.begin(), s.b.end()));
  write_file("se.vmdk", kSeDescriptor);
  auto dev = open("se.vmdk");
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  ASSERT_EQ((*dev)->size(), 4u << 20);
  std::vector<uint8_t> buf(5 * 4096 + 100);
  ASSERT_TRUE((*dev)->read(0, buf).ok());
  for (size_t i = 0; i < buf.size(); ++i) {
    uint8_t want = i < 4096 ? 'A' : (i >= 8192 && i < 12288) ? 'B' : 0;
    ASSERT_EQ(buf[i], want) << "at byte " << i;
  }
  std::vector<Extent> ex;
  ASSERT_TRUE((*dev)->extents(0, (*dev)->size(), ex).ok());
  std::vector<Extent> want = {{0, 4096, ExtentType::kData},
                              {4096, 4096, ExtentType::kZero},
                              {8192, 4096, ExtentType::kData},
                              {12288, 4096, ExtentType::kZero},
                              {16384, (4u << 20) - 16384, ExtentType::kHole}};
  EXPECT_EQ(ex, want);
}

TEST_F(VmdkHostile, SeSparseDamage) {
  write_file("se.vmdk", kSeDescriptor);
  auto check = [&](auto mutate, int code, const char* needle, bool at_read) {
    auto s = make_sesparse();
    mutate(s);
    write_file("se-sesparse.vmdk", std::string(s.b.begin(), s.b.end()));
    if (at_read)
      EXPECT_ERROR(open_and_read("se.vmdk"), code, needle);
    else
      EXPECT_ERROR(status_of(open("se.vmdk")), code, needle);
  };
  check([](SeImage& s) { s.put64(0x18, 16); }, ENOTSUP, "grainSize", false);
  check([](SeImage& s) { s.put64(0x08, 0x100000001ull); }, ENOTSUP, "version", false);
  check([](SeImage& s) { s.put64(0x30, 1); }, EINVAL, "reserved", false);
  check([](SeImage& s) { s.put64(0x88, 1u << 20); }, EINVAL, "grainDirSize", false);
  check([](SeImage& s) { s.put64(0x10, 4); }, EINVAL, "capacity", false);
  check([](SeImage& s) { s.put64(512 + 0x18, 1); }, ENOTSUP, "journal", false);
  check([](SeImage& s) { s.put64(512, 0); }, EINVAL, "volatile header magic", false);
  check([](SeImage& s) { s.put64(8 * 512, 0x2000000000000000ull); }, EINVAL, "grain directory entry 0", false);
  check([](SeImage& s) { s.put64(8 * 512, vmdk::kSeGdeAllocated | 7); }, EINVAL, "grain tables region", false);
  check([](SeImage& s) { s.put64(16 * 512, vmdk::kSeGteAllocated | (63ull << 48)); }, EINVAL, "grains region", true);
  check([](SeImage& s) { s.put64(16 * 512, 0x5000000000000000ull); }, EINVAL, "unknown type", true);
  check([](SeImage& s) { s.put64(16 * 512, 0x0000000000000001ull); }, EINVAL, "stray bits", true);
}

}  // namespace
}  // namespace vdkit
