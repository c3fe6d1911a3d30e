// A small Myers-free unified diff: LCS on lines (files here are config files), hunks merged like GNU diff's.
#include "fixups/diff.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fixups/rules/text.h"

namespace vdkit::fixups {
namespace {

enum class Op : uint8_t { kKeep, kDel, kAdd };
struct Edit {
  Op op;
  size_t a, b;  // line index in before (kKeep/kDel) and after (kKeep/kAdd)
};

std::vector<Edit> edit_script(const std::vector<std::string_view>& A, const std::vector<std::string_view>& B) {
  // Common prefix and suffix first: fixups usually touch a few lines.
  size_t pre = 0;
  while (pre < A.size() && pre < B.size() && A[pre] == B[pre]) ++pre;
  size_t suf = 0;
  while (suf < A.size() - pre && suf < B.size() - pre && A[A.size() - 1 - suf] == B[B.size() - 1 - suf]) ++suf;
  size_t n = A.size() - pre - suf, m = B.size() - pre - suf;
  std::vector<Edit> out;
  for (size_t k = 0; k < pre; ++k) out.push_back({Op::kKeep, k, k});
  if (n > kMaxDiffLines || m > kMaxDiffLines || n * m > 4u * kMaxDiffLines * 100) {
    for (size_t k = 0; k < n; ++k) out.push_back({Op::kDel, pre + k, pre});
    for (size_t k = 0; k < m; ++k) out.push_back({Op::kAdd, pre + n, pre + k});
  } else {
    std::vector<uint32_t> L((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& { return L[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;)
      for (size_t j = m; j-- > 0;)
        at(i, j) = A[pre + i] == B[pre + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
    size_t i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && A[pre + i] == B[pre + j]) {
        out.push_back({Op::kKeep, pre + i, pre + j});
        ++i, ++j;
      } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
        out.push_back({Op::kDel, pre + i, pre + j});
        ++i;
      } else {
        out.push_back({Op::kAdd, pre + i, pre + j});
        ++j;
      }
    }
  }
  for (size_t k = 0; k < suf; ++k) out.push_back({Op::kKeep, A.size() - suf + k, B.size() - suf + k});
  return out;
}

void emit_line(std::string& out, char mark, std::string_view line) {
  out += mark;
  if (!line.empty() && line.back() == '\n') {
    out += line;
  } else {
    out += line;
    out += "\n\\ No newline at end of file\n";
  }
}

std::string range(size_t start, size_t count) {
  // diff -u: "start,count", start is 1-based; an empty range names the line before it.
  size_t s = count == 0 ? start : start + 1;
  if (count == 1) return std::to_string(s);
  return std::to_string(s) + "," + std::to_string(count);
}

}  // namespace

std::string unified_diff(const std::string& path, std::string_view before, std::string_view after, int context) {
  if (before == after) return {};
  auto A = split_lines_keep(before);
  auto B = split_lines_keep(after);
  auto es = edit_script(A, B);
  std::string p = path.empty() || path[0] != '/' ? "/" + path : path;
  std::string out = "--- a" + p + "\n+++ b" + p + "\n";
  size_t ctx = static_cast<size_t>(std::max(context, 0));
  size_t k = 0;
  while (k < es.size()) {
    while (k < es.size() && es[k].op == Op::kKeep) ++k;
    if (k == es.size()) break;
    size_t start = k >= ctx ? k - ctx : 0;
    // Extend the hunk while the next change is within 2*ctx unchanged lines.
    size_t end = k;
    while (true) {
      while (end < es.size() && es[end].op != Op::kKeep) ++end;
      size_t run = end;
      while (run < es.size() && es[run].op == Op::kKeep) ++run;
      if (run < es.size() && run - end <= 2 * ctx) {
        end = run;
        continue;
      }
      end = std::min(es.size(), end + ctx);
      break;
    }
    size_t a0 = es[start].a, b0 = es[start].b, na = 0, nb = 0;
    for (size_t q = start; q < end; ++q) {
      if (es[q].op != Op::kAdd) ++na;
      if (es[q].op != Op::kDel) ++nb;
    }
    out += "@@ -" + range(a0, na) + " +" + range(b0, nb) + " @@\n";
    for (size_t q = start; q < end; ++q) {
      if (es[q].op == Op::kKeep)
        emit_line(out, ' ', A[es[q].a]);
      else if (es[q].op == Op::kDel)
        emit_line(out, '-', A[es[q].a]);
      else
        emit_line(out, '+', B[es[q].b]);
    }
    k = end;
  }
  return out;
}

}  // namespace vdkit::fixups
