// Journal recovery against e2fsprogs: journals written by debugfs (journal_open/journal_write/journal_close) and by
// the kernel (a loop mount shut down with xfs_io, root only), replayed into a memory overlay and compared with
// e2fsck's own recovery of a copy; the source is never written, and e2fsck -fn finds the result clean.
#include "guestfs/ext2/journal_replay.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "blockcore/layers/overlay.h"
#include "blockcore/sources/image.h"
#include "blockcore/testing/test_shell.h"

namespace vdkit::ext2 {
namespace {

const std::string kPath = "PATH=$PATH:/sbin:/usr/sbin ";

class JournalReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::run(kPath + "command -v mkfs.ext4 && " + kPath + "command -v debugfs") != 0)
      GTEST_SKIP() << "e2fsprogs is not installed";
    char tmpl[] = "/tmp/vdkit-journal.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    img_ = dir_ + "/fs.img";
  }
  void TearDown() override {
    if (!dir_.empty()) (void)test::run("umount " + dir_ + "/mnt 2>/dev/null; rm -rf " + dir_);
  }

  // stdout of cmd; stderr goes to the test log when it fails.
  std::string sh(const std::string& cmd) {
    int status = -1;
    std::string out =
        test::output_of("export PATH=$PATH:/sbin:/usr/sbin; { " + cmd + "; } 2>" + dir_ + "/stderr", &status);
    EXPECT_EQ(status, 0) << cmd << "\n" << out << test::output_of("cat " + dir_ + "/stderr");
    return out;
  }
  std::string sum(const std::string& f) { return sh("sha256sum < " + f); }
  // What debugfs shows without replaying the journal (-c: catastrophic mode reads as is).
  std::string cat(const std::string& img, const std::string& path) {
    return test::output_of(kPath + "debugfs -c -R 'cat " + path + "' " + img + " 2>/dev/null");
  }
  uint64_t block_of(const std::string& path) {
    std::string out = sh("debugfs -R 'bmap " + path + " 0' " + img_ + " 2>/dev/null");
    return std::stoull(out);
  }
  // A file of one block holding `text`, for journal_write.
  std::string block_file(const std::string& name, const std::string& text, uint32_t bs = 4096) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    sh("truncate -s " + std::to_string(bs) + " " + p);
    return p;
  }

  // Replays img_ into a memory overlay, writes the overlay to `out`, and returns the report. img_ is unchanged.
  JournalReport replay_to(const std::string& out) {
    const std::string before = sum(img_);
    auto dev = open_image(img_);
    EXPECT_TRUE(dev.ok()) << dev.status().message();
    std::shared_ptr<BlockDevice> overlay = make_memory_overlay(std::shared_ptr<BlockDevice>(std::move(*dev)));
    auto r = replay_journal(overlay);
    EXPECT_TRUE(r.ok()) << r.status().message();
    std::ofstream o(out, std::ios::binary);
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t off = 0; off < overlay->size(); off += buf.size()) {
      EXPECT_TRUE(overlay->read(off, buf).ok());
      o.write(reinterpret_cast<const char*>(buf.data()), buf.size());
    }
    o.close();
    EXPECT_EQ(sum(img_), before) << "the source was written";
    return r.ok() ? *r : JournalReport{};
  }

  // The output is clean for e2fsck -fn, and recovering it again (e2fsck -E journal_only) changes nothing.
  void expect_recovered(const std::string& out) {
    std::string msg;
    EXPECT_EQ(test::run(kPath + "e2fsck -fn " + out, &msg), 0) << msg;
    const std::string before = sum(out);
    EXPECT_EQ(test::run(kPath + "e2fsck -E journal_only -p " + out, &msg), 0) << msg;
    EXPECT_EQ(sum(out), before) << "e2fsck found something left to recover";
    EXPECT_EQ(sh("dumpe2fs -h " + out + " 2>/dev/null | grep -c needs_recovery || true"), "0\n");
  }

  // e2fsck's own recovery of a copy, for comparison.
  std::string e2fsck_copy() {
    std::string ref = dir_ + "/ref.img";
    sh("cp --sparse=always " + img_ + " " + ref);
    (void)test::run(kPath + "e2fsck -fy " + ref);
    return ref;
  }

  std::string dir_, img_;
};

// mkfs variants: 64-bit and 32-bit tags, 1 KiB blocks, ext3, no metadata checksums.
class DebugfsJournalTest : public JournalReplayTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(DebugfsJournalTest, ReplaysACommittedTransactionLikeE2fsck) {
  sh("truncate -s 48M " + img_ + " && " + GetParam() + " -q -F " + img_);
  const uint32_t bs = std::stoul(sh("dumpe2fs -h " + img_ + " 2>/dev/null | sed -n 's/^Block size: *//p'"));
  std::string old_text = "/dev/xvda1 / ext4 defaults 0 1\n";
  std::ofstream(dir_ + "/fstab") << old_text;
  sh("debugfs -w -R 'mkdir etc' " + img_ + " && debugfs -w -R 'write " + dir_ + "/fstab etc/fstab' " + img_);
  const uint64_t blk = block_of("etc/fstab");
  std::string new_text = "/dev/xvda2 / ext4 defaults 0 1\n";
  std::string nb = block_file("new", new_text, bs);
  sh("printf 'jo\\njw -b " + std::to_string(blk) + " " + nb + "\\njc\\n' | debugfs -w -f - " + img_);
  // Only the journal holds the new content.
  ASSERT_EQ(cat(img_, "etc/fstab"), old_text);
  auto st = read_journal_state(open_image(img_).value());
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->state(), "needs-recovery");
  EXPECT_EQ(st->version, 2);

  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.state(), "replayed") << r.summary();
  EXPECT_EQ(r.transactions, 1u);
  EXPECT_EQ(r.blocks, 1u);
  EXPECT_TRUE(r.not_replayed.empty()) << r.not_replayed;
  // The file keeps its size; its block now holds the logged copy.
  EXPECT_EQ(cat(out, "etc/fstab"), new_text);
  EXPECT_EQ(cat(out, "etc/fstab"), cat(e2fsck_copy(), "etc/fstab"));
  expect_recovered(out);
}

INSTANTIATE_TEST_SUITE_P(Mkfs, DebugfsJournalTest,
                         ::testing::Values("mkfs.ext4", "mkfs.ext4 -O ^64bit", "mkfs.ext4 -b 1024",
                                           "mkfs.ext4 -O ^metadata_csum", "mkfs.ext3"),
                         [](const auto& info) {
                           std::string n;
                           for (char c : info.param)
                             if (isalnum(static_cast<unsigned char>(c))) n += c;
                           return n;
                         });

TEST_F(JournalReplayTest, ARevokeInALaterTransactionKeepsTheBlockOnDisk) {
  sh("truncate -s 48M " + img_ + " && mkfs.ext4 -q -F " + img_);
  std::ofstream(dir_ + "/f") << "old\n";
  sh("debugfs -w -R 'write " + dir_ + "/f f' " + img_);
  const uint64_t blk = block_of("f");
  std::string nb = block_file("new", "new\n");
  sh("printf 'jo\\njw -b " + std::to_string(blk) + " " + nb + "\\njc\\njo\\njw -r " + std::to_string(blk) +
     "\\njc\\n' | debugfs -w -f - " + img_);
  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.transactions, 2u);
  EXPECT_EQ(r.blocks, 0u);
  EXPECT_EQ(r.revoked, 1u);
  EXPECT_EQ(cat(out, "f"), "old\n");
  EXPECT_EQ(cat(e2fsck_copy(), "f"), "old\n");
  expect_recovered(out);
}

// An orphan still linked (truncated while open): cut to its size, its later blocks freed, as e2fsck does.
TEST_F(JournalReplayTest, ALinkedOrphanIsTruncatedToItsSizeLikeE2fsck) {
  sh("truncate -s 48M " + img_ + " && mkfs.ext4 -q -F " + img_ + " && head -c 100000 /dev/urandom > " + dir_ +
     "/big && debugfs -w -R 'write " + dir_ + "/big big' " + img_);
  const std::string ino =
      sh("debugfs -R 'stat big' " + img_ + " 2>/dev/null | sed -n 's/^Inode: \\([0-9]*\\).*/\\1/p'");
  ASSERT_FALSE(ino.empty());
  // The kernel's state mid-truncate: the new size, the old blocks, the inode on the orphan list, recovery pending.
  sh("printf 'sif big size 5000\\nssv last_orphan " + ino.substr(0, ino.size() - 1) +
     "\\nfeature needs_recovery\\n' | debugfs -w -f - " + img_);
  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.orphans_truncated, 1u) << r.summary();
  EXPECT_EQ(r.orphans_deleted, 0u);
  auto blocks = [&](const std::string& img) {
    return sh("debugfs -R 'stat big' " + img + " 2>/dev/null | grep -o 'Blockcount: [0-9]*'");
  };
  const std::string ref = e2fsck_copy();
  EXPECT_EQ(blocks(out), blocks(ref));
  EXPECT_EQ(cat(out, "big"), cat(ref, "big"));
  EXPECT_EQ(cat(out, "big").size(), 5000u);
  EXPECT_EQ(sh("dumpe2fs -h " + out + " 2>/dev/null | grep -c 'First orphan' || true"), "0\n");
  expect_recovered(out);
}

TEST_F(JournalReplayTest, ACleanJournalIsReportedAndNotTouched) {
  sh("truncate -s 48M " + img_ + " && mkfs.ext4 -q -F " + img_);
  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.state(), "clean");
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(sum(out), sum(img_));
}

// The kernel's own journal (checksum v3, data=journal so file contents are logged too) after xfs_io's shutdown,
// with an orphan: a file deleted while open.
class KernelJournalTest : public JournalReplayTest {
 protected:
  void SetUp() override {
    JournalReplayTest::SetUp();
    if (IsSkipped()) return;
    if (geteuid() != 0 || test::run(kPath + "command -v xfs_io") != 0)
      GTEST_SKIP() << "needs root (a loop mount) and xfs_io";
    // Should the host write a logged block back before the shutdown, try again.
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::string why;
      if (!MakeJournal(why)) GTEST_SKIP() << why;
      if (cat(img_, "etc/fstab") != kNewFstab) return;
    }
    GTEST_SKIP() << "the host kept writing the logged blocks back before the shutdown";
  }

  static constexpr const char* kNewFstab = "/dev/xvda2 / ext4 defaults 0 1\n";

  bool MakeJournal(std::string& why) {
    sh("rm -f " + img_ + " && truncate -s 48M " + img_ + " && mkfs.ext4 -q -F " + img_ + " && mkdir -p " + dir_ +
       "/mnt");
    // data=journal logs file contents too; commit=1 commits each second.
    if (test::run("mount -o loop,data=journal,commit=1 " + img_ + " " + dir_ + "/mnt", &why) != 0) return false;
    const std::string m = dir_ + "/mnt";
    sh("mkdir " + m + "/etc && echo old > " + m + "/etc/fstab && sync");
    sh("echo '/dev/xvda2 / ext4 defaults 0 1' > " + m + "/etc/fstab && echo gone > " + m + "/gone && " +
       "head -c 200000 /dev/urandom > " + m + "/big");
    // Delete a file while a process holds it open, then shut the file system down under it.
    // The image is copied right after the shutdown, as a snapshot of a running guest would be: the unmount's sync
    // would write the logged blocks in place.
    sh("exec 3<" + m + "/gone; rm " + m + "/gone; sleep 3; xfs_io -x -c shutdown " + m + "; cp --sparse=always " +
       img_ + " " + img_ + ".snap; exec 3<&-");
    sh("umount " + m + " && mv " + img_ + ".snap " + img_);
    return true;
  }
};

TEST_F(KernelJournalTest, ReplaysTheLogAndItsOrphansLikeTheKernel) {
  // Without replay the new content is nowhere (SetUp made sure; the kernel may have written the inode in place).
  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.state(), "replayed") << r.summary();
  EXPECT_EQ(r.checksum, "v3");
  EXPECT_GE(r.transactions, 1u);
  EXPECT_EQ(r.orphans_deleted, 1u) << r.summary();
  EXPECT_EQ(cat(out, "etc/fstab"), kNewFstab);
  EXPECT_EQ(sh("debugfs -c -R 'cat big' " + out + " 2>/dev/null | wc -c"), "200000\n");
  expect_recovered(out);
}

TEST_F(KernelJournalTest, AChecksumFailureStopsBeforeThatTransactionAndSaysSo) {
  // The last transaction's first logged block: the block after its descriptor.
  std::string dump = sh("debugfs -R logdump " + img_ + " 2>/dev/null | grep 'descriptor block' | tail -1");
  ASSERT_NE(dump.find("at block "), std::string::npos) << dump;
  const uint64_t log_block = std::stoull(dump.substr(dump.find("at block ") + 9)) + 1;
  const uint64_t fs_block =
      std::stoull(sh("debugfs -R 'bmap <8> " + std::to_string(log_block) + "' " + img_ + " 2>/dev/null"));
  const uint64_t total = std::stoull(sh("debugfs -R logdump " + img_ + " 2>/dev/null | grep -c 'commit block'"));
  const uint64_t bs = std::stoull(sh("dumpe2fs -h " + img_ + " 2>/dev/null | sed -n 's/^Block size: *//p'"));
  sh("printf '\\xff' | dd of=" + img_ + " bs=1 seek=" + std::to_string(fs_block * bs + 100) +
     " conv=notrunc status=none");
  std::string out = dir_ + "/out.img";
  JournalReport r = replay_to(out);
  EXPECT_EQ(r.state(), "replayed-partly") << r.summary();
  EXPECT_EQ(r.transactions, total - 1);
  EXPECT_NE(r.not_replayed.find("does not match"), std::string::npos) << r.not_replayed;
  EXPECT_NE(r.summary().find("NOT replayed"), std::string::npos);
}

}  // namespace
}  // namespace vdkit::ext2
