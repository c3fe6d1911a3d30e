// A fixup interrupted part way must be finished by a rerun. apply_fixups writes the plan's files one at a time, in
// order, and each write is all or nothing (the --in-place transactions), so the states an interrupted run can leave
// are exactly "the first k changes written". For every test guest and every k, a rerun on that state must end with the
// same tree as one uninterrupted run, and a run after that must find nothing to change and warn as it would on that
// run's result. A rule that decides from the guest as a whole (predictable NIC names, the boot disk, the Xen default
// kernel) and sees its own half-done work is what this finds.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fixups/fixup.h"

namespace vdkit::fixups {
namespace {

#ifdef VDKIT_GUESTS_DIR

std::string sh_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int run(const std::string& cmd) { return std::system(cmd.c_str()); }

// A test guest as a folder (its root tree, with a "boot" tree under /boot) and the file systems its manifest
// describes, so device names map as they do on the image.
struct FolderGuest {
  std::string tree;
  std::vector<FsInfo> filesystems;
};

std::vector<FsInfo> manifest_filesystems(const std::string& guest) {
  std::vector<FsInfo> out;
  std::ifstream in(guest + "/manifest");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream w(line);
    std::string kind, num, size, type, uuid, label, tree;
    if (!(w >> kind >> num >> size >> type >> uuid >> label >> tree)) continue;
    if (kind != "part" && kind != "whole") continue;
    FsInfo f;
    f.partition = kind == "whole" ? 0 : std::atoi(num.c_str());
    f.type = type;
    f.uuid = uuid;
    f.label = label == "-" ? "" : label;
    f.mount_point = tree == "root" ? "/" : tree == "boot" ? "/boot" : "";
    out.push_back(f);
  }
  return out;
}

class ConvergeTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char d[] = "/tmp/vdkit-converge-test.XXXXXX";
    ASSERT_NE(mkdtemp(d), nullptr);
    dir_ = d;
    guest_ = std::string(VDKIT_GUESTS_DIR) + "/" + GetParam();
    filesystems_ = manifest_filesystems(guest_);
    ASSERT_FALSE(filesystems_.empty()) << guest_;
  }
  void TearDown() override { run("rm -rf " + sh_quote(dir_)); }

  // A fresh copy of the guest's pristine tree at dir_/name.
  std::string copy(const std::string& name) {
    std::string t = dir_ + "/" + name;
    EXPECT_EQ(run("mkdir -p " + sh_quote(t) + " && cp -a " + sh_quote(guest_ + "/root/.") + " " + sh_quote(t)), 0);
    struct stat st;
    if (stat((guest_ + "/boot").c_str(), &st) == 0) {
      EXPECT_EQ(run("mkdir -p " + sh_quote(t + "/boot") + " && cp -a " + sh_quote(guest_ + "/boot/.") + " " +
                    sh_quote(t + "/boot")),
                0);
    }
    return t;
  }
  FixupPlan plan(const std::string& tree, bool apply) {
    auto fs = open_folder_guest(tree, apply);
    EXPECT_TRUE(fs.ok());
    Inspection in = inspect_guest(**fs, filesystems_);
    FixupPlan p = plan_fixups(**fs, in, options_);
    if (apply) {
      Status s = apply_fixups(**fs, p, options_);
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return p;
  }
  static void write_file(const std::string& path, const std::string& text) {
    std::string dir = path.substr(0, path.rfind('/'));
    ASSERT_EQ(run("mkdir -p " + sh_quote(dir)), 0);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }

  void sweep();

  std::string dir_, guest_;
  std::vector<FsInfo> filesystems_;
  FixupOptions options_;
};

void ConvergeTest::sweep() {
  std::string full = copy("full");
  FixupPlan p = plan(full, true);
  ASSERT_FALSE(p.changes.empty()) << GetParam() << ": the guest needs fixing";
  FixupPlan settled = plan(full, false);
  EXPECT_TRUE(settled.changes.empty()) << to_human(settled);
  auto codes = [](const FixupPlan& q) {
    std::vector<std::string> c;
    for (const auto& w : q.warnings) c.push_back(w.code + ": " + w.message);
    return c;
  };
  for (size_t k = 1; k < p.changes.size(); ++k) {
    SCOPED_TRACE(GetParam() + ": interrupted after " + std::to_string(k) + " of " + std::to_string(p.changes.size()) +
                 " files, the last " + p.changes[k - 1].path);
    std::string t = copy("k" + std::to_string(k));
    for (size_t i = 0; i < k; ++i) write_file(t + p.changes[i].path, p.changes[i].after);
    FixupPlan rerun = plan(t, true);
    // Its own half-done work is no evidence of another disk or of a name it cannot map.
    for (const auto& w : rerun.warnings) {
      if (w.code != "more-than-one-disk" && w.code != "unknown-disk" && w.code != "unmapped-device") continue;
      EXPECT_TRUE(std::any_of(p.warnings.begin(), p.warnings.end(), [&](const auto& f) { return f.code == w.code; }))
          << w.code << ": " << w.message;
    }
    EXPECT_EQ(run("diff -r --no-dereference " + sh_quote(full) + " " + sh_quote(t) + " >&2"), 0);
    FixupPlan again = plan(t, false);
    EXPECT_TRUE(again.changes.empty()) << to_human(again);
    EXPECT_EQ(codes(again), codes(settled));  // and it says what a settled guest says, no more
    run("rm -rf " + sh_quote(t));
  }
}

TEST_P(ConvergeTest, AnyPrefixOfTheChangesThenARerunEndsLikeOneRun) {
  // Each way of naming devices, and with the network left alone: the options change the plan, so each is swept.
  for (auto naming : {DeviceNaming::kUuid, DeviceNaming::kLabel, DeviceNaming::kVd})
    for (NetworkMode network : {NetworkMode::kDhcp, NetworkMode::kKeep, NetworkMode::kNone}) {
      options_.naming = naming;
      options_.network = network;
      SCOPED_TRACE("naming " + std::to_string(static_cast<int>(naming)) + ", --network " + to_string(network));
      sweep();
      run("rm -rf " + sh_quote(dir_) + "/*");
    }
}

// Every guest under tests/guests, so a new one is covered without a change here.
std::vector<std::string> guest_names() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(VDKIT_GUESTS_DIR))
    if (std::filesystem::exists(e.path() / "manifest")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Guests, ConvergeTest, testing::ValuesIn(guest_names()),
                         [](const testing::TestParamInfo<std::string>& i) { return i.param; });

#endif

}  // namespace
}  // namespace vdkit::fixups
