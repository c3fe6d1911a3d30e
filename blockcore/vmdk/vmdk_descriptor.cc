// The VMDK text descriptor parser: key = value lines, extent lines, comments, CRLF, quoted names.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "blockcore/base/checked.h"
#include "blockcore/vmdk/vmdk_format.h"

namespace vdkit::vmdk {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

// Splits off the next whitespace-separated token, or a "quoted" one (quotes removed).
bool next_token(std::string_view& s, std::string& tok, bool& quoted) {
  s = trim(s);
  if (s.empty()) return false;
  quoted = s.front() == '"';
  if (quoted) {
    auto end = s.find('"', 1);
    if (end == std::string_view::npos) return false;
    tok.assign(s.substr(1, end - 1));
    s.remove_prefix(end + 1);
    return true;
  }
  size_t end = 0;
  while (end < s.size() && s[end] != ' ' && s[end] != '\t') ++end;
  tok.assign(s.substr(0, end));
  s.remove_prefix(end);
  return true;
}

bool parse_u64(std::string_view s, uint64_t& v, int base = 10) {
  if (s.empty()) return false;
  if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  return ec == std::errc() && p == s.data() + s.size();
}

bool kind_from(std::string_view name, ExtentKind& k) {
  static const std::pair<const char*, ExtentKind> kinds[] = {{"SPARSE", ExtentKind::kSparse},
                                                             {"FLAT", ExtentKind::kFlat},
                                                             {"ZERO", ExtentKind::kZero},
                                                             {"VMFS", ExtentKind::kVmfs},
                                                             {"VMFSRAW", ExtentKind::kVmfsRaw},
                                                             {"VMFSRDM", ExtentKind::kVmfsRdm},
                                                             {"VMFSSPARSE", ExtentKind::kVmfsSparse},
                                                             {"SESPARSE", ExtentKind::kSeSparse}};
  for (auto& [n, kind] : kinds) {
    if (iequals(name, n)) {
      k = kind;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string Descriptor::get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (iequals(k, key)) return v;
  }
  return {};
}

uint64_t Descriptor::total_sectors() const {
  uint64_t t = 0;
  for (const auto& e : extents) t += e.sectors;
  return t;
}

Result<Descriptor> parse_descriptor(std::string_view text, const std::string& where) {
  if (text.size() > kMaxDescriptorBytes)
    return Status::Corrupt("'" + where + "': descriptor is " + std::to_string(text.size()) +
                           " bytes, more than the limit of " + std::to_string(kMaxDescriptorBytes) +
                           " (kMaxDescriptorBytes = 1 MiB)");
  if (auto nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
  Descriptor d;
  uint64_t total = 0;
  size_t line_no = 0;
  auto err = [&](const std::string& what) {
    return Status::Corrupt("'" + where + "': descriptor line " + std::to_string(line_no) + ": " + what);
  };
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;

    // Extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]].
    std::string_view rest = line;
    std::string tok;
    bool quoted = false;
    next_token(rest, tok, quoted);
    ExtentAccess access;
    bool is_extent = true;
    if (!quoted && iequals(tok, "RW"))
      access = ExtentAccess::kReadWrite;
    else if (!quoted && iequals(tok, "RDONLY"))
      access = ExtentAccess::kReadOnly;
    else if (!quoted && iequals(tok, "NOACCESS"))
      access = ExtentAccess::kNoAccess;
    else
      is_extent = false;
    if (is_extent && line.find('=') != std::string_view::npos && line.find('"') == std::string_view::npos)
      is_extent = false;  // "RW=..." is a key, not an extent
    if (is_extent) {
      if (d.extents.size() >= kMaxExtents)
        return err("more than " + std::to_string(kMaxExtents) + " extents (kMaxExtents)");
      DescriptorExtent e;
      e.line = line_no;
      e.access = access;
      if (!next_token(rest, tok, quoted) || quoted || !parse_u64(tok, e.sectors))
        return err("extent size is not a number of sectors");
      if (e.sectors == 0) return err("extent size is 0 sectors");
      if (!next_token(rest, tok, quoted) || quoted) return err("extent type is missing");
      if (!kind_from(tok, e.kind)) return err("unknown extent type '" + tok + "'");
      e.kind_name = upper(tok);
      if (next_token(rest, tok, quoted)) {
        e.filename = tok;
        if (next_token(rest, tok, quoted)) {
          if (quoted || !parse_u64(tok, e.offset)) return err("extent offset '" + tok + "' is not a number");
          if (e.offset > kMaxCapacitySectors)
            return err("extent offset " + tok + " sectors is past any possible file size");
        }
        if (!trim(rest).empty()) return err("unexpected text after the extent's offset");
      } else if (line.find('"') != std::string_view::npos) {
        return err("extent file name has no closing quote");
      }
      if (e.kind == ExtentKind::kZero) {
        if (!e.filename.empty()) return err("a ZERO extent names no file");
      } else if (e.filename.empty()) {
        return err(e.kind_name + " extent names no file");
      }
      auto t = checked_add(total, e.sectors);
      if (!t || *t > kMaxCapacitySectors)
        return err("extents add up to more than the limit of " + std::to_string(kMaxCapacitySectors) +
                   " sectors (kMaxCapacityBytes = 1 PiB)");
      total = *t;
      d.extents.push_back(std::move(e));
      continue;
    }

    auto eq = line.find('=');
    if (eq == std::string_view::npos) return err("is neither \"key = value\" nor an extent");
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (key.empty()) return err("has an empty key");
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    else if (!value.empty() && value.front() == '"')
      return err("value of '" + std::string(key) + "' has no closing quote");
    std::string k(key), v(value);
    if (iequals(key, "version")) {
      d.version = v;
    } else if (iequals(key, "encoding")) {
      d.encoding = v;
    } else if (iequals(key, "CID") || iequals(key, "parentCID")) {
      uint64_t n = 0;
      if (!parse_u64(value, n, 16) || n > 0xffffffffull) return err(k + " '" + v + "' is not a 32-bit hex number");
      if (iequals(key, "CID")) {
        d.cid = static_cast<uint32_t>(n);
      } else {
        d.parent_cid = static_cast<uint32_t>(n);
        d.has_parent_cid = true;
      }
    } else if (iequals(key, "createType")) {
      d.create_type = v;
    } else if (iequals(key, "parentFileNameHint")) {
      d.parent_file_name_hint = v;
    }
    d.entries.emplace_back(std::move(k), std::move(v));
  }
  if (d.extents.empty() && d.entries.empty())
    return Status::Corrupt("'" + where + "': descriptor is empty: no createType and no extents");
  if (d.extents.empty()) return Status::Corrupt("'" + where + "': descriptor names no extents");
  if (d.create_type.empty()) return Status::Corrupt("'" + where + "': descriptor has no createType");
  return d;
}

}  // namespace vdkit::vmdk
