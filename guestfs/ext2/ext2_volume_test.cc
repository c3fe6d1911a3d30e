// Tests for Ext2Volume: file systems made by mkfs.ext4 -d, edited through the path API, checked by e2fsck and debugfs.
#include "guestfs/ext2/ext2_volume.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "blockcore/testing/memory_device.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit {
namespace {

// Every command here redirects its own stderr; the braces keep test::run's 2>&1 from overriding that.
std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  int st = test::run("{ " + cmd + "; }", &out);
  if (status) *status = st;
  return out;
}

class Ext2VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vdkit-ext2test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::string tree = dir_ + "/tree";
    ASSERT_EQ(0, system(("mkdir -p " + tree + "/etc " + tree + "/a/b && printf 'UUID=1 / ext4 defaults 0 1\\n' > " +
                         tree + "/etc/fstab && printf hello > " + tree + "/a/b/c.txt && ln -s ../etc/fstab " + tree +
                         "/a/link && chmod 0600 " + tree + "/a/b/c.txt")
                            .c_str()));
    std::string img = dir_ + "/fs.img";
    int st = 0;
    run("mkfs.ext4 -q -F -b 4096 -d " + tree + " " + img + " 16M 2>&1", &st);
    ASSERT_EQ(st, 0);
    std::ifstream f(img, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    dev_ = std::make_shared<MemoryDevice>(std::move(bytes));
  }
  void TearDown() override { (void)system(("rm -rf " + dir_).c_str()); }

  // Writes the device's bytes to a file and runs a peer on it.
  std::string dump() {
    std::string out = dir_ + "/out.img";
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(dev_->bytes().data()), dev_->bytes().size());
    return out;
  }

  std::string dir_;
  std::shared_ptr<MemoryDevice> dev_;
};

TEST_F(Ext2VolumeTest, ReadsWhatMkfsWrote) {
  auto vol = Ext2Volume::Open(dev_, false);
  ASSERT_TRUE(vol.ok()) << vol.status().message();
  auto fstab = (*vol)->ReadFile("/etc/fstab");
  ASSERT_TRUE(fstab.ok()) << fstab.status().message();
  EXPECT_EQ(*fstab, "UUID=1 / ext4 defaults 0 1\n");
  auto via_link = (*vol)->ReadFile("/a/link");
  ASSERT_TRUE(via_link.ok());
  EXPECT_EQ(*via_link, *fstab);
  EXPECT_EQ(*(*vol)->ReadLink("/a/link"), "../etc/fstab");
  auto st = (*vol)->Lstat("/a/b/c.txt");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->mode & 07777, 0600u);
  EXPECT_EQ(st->size, 5u);
  EXPECT_EQ((*vol)->Stat("/missing").status().code(), ENOENT);
  EXPECT_EQ((*vol)->WriteFile("/etc/fstab", "x").code(), EROFS);
  auto entries = (*vol)->ReadDir("/a");
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> names;
  for (auto& e : *entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b", "link"}));
}

TEST_F(Ext2VolumeTest, EditsAreCleanForE2fsckAndVisibleToDebugfs) {
  {
    auto vol = Ext2Volume::Open(dev_, true);
    ASSERT_TRUE(vol.ok()) << vol.status().message();
    Ext2Volume& v = **vol;
    ASSERT_TRUE(v.Chown("/a/b/c.txt", 1234, 5678).ok());
    ASSERT_TRUE(v.SetXattr("/a/b/c.txt", "user.note", "kept").ok());
    ASSERT_TRUE(v.WriteFile("/a/b/c.txt", "replaced content\n").ok());
    ASSERT_TRUE(v.WriteFile("/a/link", "through the link\n").ok());  // edits /etc/fstab
    ASSERT_TRUE(v.Mkdir("/new", 0700).ok());
    EXPECT_EQ(v.Mkdir("/new").code(), EEXIST);
    std::string big(300000, 'z');
    ASSERT_TRUE(v.WriteFile("/new/big", big).ok());
    ASSERT_TRUE(v.Symlink("/new/big", "/new/big-link").ok());
    ASSERT_TRUE(v.Rename("/new/big", "/a/big").ok());
    EXPECT_EQ(v.Rmdir("/a").code(), ENOTEMPTY);
    ASSERT_TRUE(v.Unlink("/new/big-link").ok());
    ASSERT_TRUE(v.Rmdir("/new").ok());
    ASSERT_TRUE(v.Chmod("/a/big", 0640).ok());
    for (int i = 0; i < 300; ++i) ASSERT_TRUE(v.WriteFile("/a/f" + std::to_string(i), "n").ok());  // grows the folder

    auto st = v.Lstat("/a/b/c.txt");
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->uid, 1234u);
    EXPECT_EQ(st->gid, 5678u);
    EXPECT_EQ(st->mode & 07777, 0600u);
    EXPECT_EQ(*v.GetXattr("/a/b/c.txt", "user.note"), "kept");
    EXPECT_EQ(*v.ReadFile("/a/big"), big);
    EXPECT_FALSE(v.Exists("/new"));
    ASSERT_TRUE(v.Close().ok());
  }
  std::string img = dump();
  int st = 0;
  std::string fsck = run("e2fsck -fn " + img + " 2>&1", &st);
  EXPECT_EQ(st, 0) << fsck;
  EXPECT_EQ(run("debugfs -R 'cat /etc/fstab' " + img + " 2>/dev/null"), "through the link\n");
  EXPECT_EQ(run("debugfs -R 'cat /a/b/c.txt' " + img + " 2>/dev/null"), "replaced content\n");
  std::string stat = run("debugfs -R 'stat /a/b/c.txt' " + img + " 2>/dev/null");
  EXPECT_NE(stat.find("User:  1234   Group:  5678"), std::string::npos) << stat;
  EXPECT_NE(run("debugfs -R 'ls -l /a' " + img + " 2>/dev/null").find("f299"), std::string::npos);
}

TEST_F(Ext2VolumeTest, RefusesWhatIsNotExt) {
  auto junk = std::make_shared<MemoryDevice>(std::vector<uint8_t>(1 << 20, 0));
  auto vol = Ext2Volume::Open(junk, false);
  ASSERT_FALSE(vol.ok());
  EXPECT_NE(vol.status().message().find("1080"), std::string::npos);
  auto ro = std::make_shared<MemoryDevice>(dev_->bytes(), false);
  EXPECT_EQ(Ext2Volume::Open(ro, true).status().code(), EROFS);
}

// libext2fs passes only an errcode_t up from the io_manager; the Status must still say what the device said.
TEST_F(Ext2VolumeTest, AReadFaultNamesTheDeviceOffset) {
  auto vol = Ext2Volume::Open(dev_, false);
  ASSERT_TRUE(vol.ok()) << vol.status().message();
  dev_->fail_reads = true;
  auto text = (*vol)->ReadFile("/a/b/c.txt");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), EIO);
  const std::string& m = text.status().message();
  EXPECT_NE(m.find("memory device: injected read error at "), std::string::npos) << m;
  EXPECT_NE(m.find("bytes at offset "), std::string::npos) << m;
  dev_->fail_reads = false;
  auto again = (*vol)->ReadFile("/a/b/c.txt");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, "hello");
  // A later error that is not the device's carries no stale device message.
  auto missing = (*vol)->ReadFile("/a/none");
  EXPECT_EQ(missing.status().code(), ENOENT);
  EXPECT_EQ(missing.status().message().find("injected"), std::string::npos) << missing.status().message();
}

// An exception thrown by the device must not unwind through libext2fs: it comes back as an EIO naming it.
TEST_F(Ext2VolumeTest, AnExceptionFromTheDeviceStaysOnOurSideOfLibext2fs) {
  auto vol = Ext2Volume::Open(dev_, false);
  ASSERT_TRUE(vol.ok()) << vol.status().message();
  dev_->on_read = [](uint64_t, size_t) { throw std::runtime_error("the device went away mid-read"); };
  auto text = (*vol)->ReadFile("/etc/fstab");
  dev_->on_read = nullptr;
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), EIO);
  EXPECT_NE(text.status().message().find("the device went away mid-read"), std::string::npos)
      << text.status().message();
  EXPECT_TRUE((*vol)->ReadFile("/etc/fstab").ok());
}

TEST_F(Ext2VolumeTest, FullFileSystemGivesEnospc) {
  auto vol = Ext2Volume::Open(dev_, true);
  ASSERT_TRUE(vol.ok());
  std::string chunk(4 << 20, 'q');
  Status last;
  for (int i = 0; i < 8 && last.ok(); ++i) last = (*vol)->WriteFile("/fill" + std::to_string(i), chunk);
  EXPECT_EQ(last.code(), ENOSPC) << last.message();
  ASSERT_TRUE((*vol)->Close().ok());
  int st = 0;
  std::string fsck = run("e2fsck -fn " + dump() + " 2>&1", &st);
  EXPECT_EQ(st, 0) << fsck;
}

// Fails each write of two WriteFile calls in turn (torn in the middle): every file must read as before or as
// written, never a mix, and e2fsck must find the file system clean, whichever write failed.
TEST_F(Ext2VolumeTest, AWriteFailingAnywhereLeavesEachFileOldOrNew) {
  const std::vector<uint8_t> pristine = dev_->bytes();
  const std::string old_fstab = "UUID=1 / ext4 defaults 0 1\n", new_fstab = "UUID=2 / ext4 defaults 0 1\n";
  const std::string old_c = "hello", new_c(20000, 'n');
  uint64_t total = 0;
  for (uint64_t k = 0;; ++k) {
    dev_ = std::make_shared<MemoryDevice>(pristine);
    Status first, second, closed;
    {
      auto vol = Ext2Volume::Open(dev_, true);
      ASSERT_TRUE(vol.ok()) << vol.status().message();
      dev_->fail_write = dev_->writes.load() + k;  // counted from after the open
      first = (*vol)->WriteFile("/etc/fstab", new_fstab);
      second = first.ok() ? (*vol)->WriteFile("/a/b/c.txt", new_c) : first;
      closed = (*vol)->Close();
    }
    std::string img = dump();
    int st = 0;
    std::string fsck = run("e2fsck -fn " + img + " 2>&1", &st);
    EXPECT_EQ(st, 0) << "write " << k << " failed:\n" << fsck;
    std::string fstab = run("debugfs -R 'cat /etc/fstab' " + img + " 2>/dev/null");
    std::string c = run("debugfs -R 'cat /a/b/c.txt' " + img + " 2>/dev/null");
    EXPECT_TRUE(fstab == old_fstab || fstab == new_fstab) << "write " << k << ": fstab is '" << fstab << "'";
    EXPECT_TRUE(c == old_c || c == new_c) << "write " << k << ": c.txt has " << c.size() << " bytes";
    if (!first.ok()) {
      EXPECT_EQ(fstab, old_fstab) << "write " << k << ": " << first.message();
      EXPECT_NE(first.message().find("rolled back"), std::string::npos) << first.message();
    }
    if (first.ok() && !second.ok()) {
      EXPECT_EQ(fstab, new_fstab) << "write " << k;
      EXPECT_EQ(c, old_c) << "write " << k << ": " << second.message();
    }
    if (first.ok() && second.ok() && closed.ok()) {
      EXPECT_EQ(fstab, new_fstab);
      EXPECT_EQ(c, new_c);
      total = k;
      break;  // the failure index is past the last write: every point has been tried
    }
    ASSERT_LT(k, 2000u) << "runaway";
  }
  EXPECT_GT(total, 10u) << "the two edits and the close take more than a few writes";
}

// The blocks go back after a failed write, but reading the file system again fails too: the volume must keep a
// usable (if stale) ext2_filsys, so reads neither crash nor lie about the device, refuse further writes, and
// Close() must report that the file system needs e2fsck instead of returning success.
TEST_F(Ext2VolumeTest, AReloadFailingAfterRollBackLeavesTheVolumeReadableAndCloseSaysSo) {
  auto vol = Ext2Volume::Open(dev_, true);
  ASSERT_TRUE(vol.ok()) << vol.status().message();
  dev_->fail_reads_after_write_error = true;
  dev_->fail_write = dev_->writes.load();  // the first write of the next change
  Status w = (*vol)->WriteFile("/etc/fstab", "UUID=2 / ext4 defaults 0 1\n");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.message().find("put back"), std::string::npos) << w.message();
  dev_->fail_reads = false;
  auto text = (*vol)->ReadFile("/etc/fstab");  // used to dereference a null ext2_filsys
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "UUID=1 / ext4 defaults 0 1\n");
  EXPECT_TRUE((*vol)->Stat("/a/b/c.txt").ok());
  EXPECT_EQ((*vol)->WriteFile("/etc/fstab", "x\n").code(), EIO);
  Status closed = (*vol)->Close();
  EXPECT_FALSE(closed.ok());
  EXPECT_NE(closed.message().find("e2fsck"), std::string::npos) << closed.message();
  std::string img = dump();
  int st = 0;
  std::string fsck = run("e2fsck -fn " + img + " 2>&1", &st);
  EXPECT_EQ(st, 0) << fsck;  // the blocks did go back
  EXPECT_EQ(run("debugfs -R 'cat /etc/fstab' " + img + " 2>/dev/null"), "UUID=1 / ext4 defaults 0 1\n");
}

}  // namespace
}  // namespace vdkit
