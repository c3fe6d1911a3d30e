// Xen, SCSI and IDE disk names: /dev/<prefix><letters>[<partition>] parsed and spelled, and found in any text.
#include "fixups/rules/device_names.h"

#include <cctype>

#include "fixups/rules/text.h"

namespace vdkit::fixups {
using namespace detail;

std::optional<DeviceName> parse_device_name(std::string_view s) {
  if (!starts_with(s, "/dev/")) return std::nullopt;
  s.remove_prefix(5);
  DeviceName d;
  for (const char* p : {"xvd", "sd", "hd", "vd"}) {
    if (starts_with(s, p)) {
      d.prefix = p;
      break;
    }
  }
  if (d.prefix.empty()) return std::nullopt;
  s.remove_prefix(d.prefix.size());
  size_t i = 0;
  long disk = 0;
  while (i < s.size() && s[i] >= 'a' && s[i] <= 'z') {
    if (i >= 3) return std::nullopt;  // sdzzz is already far beyond any real disk count
    disk = disk * 26 + (s[i] - 'a' + 1);
    ++i;
  }
  if (i == 0) return std::nullopt;
  d.disk = static_cast<int>(disk - 1);
  size_t j = i;
  long part = 0;
  while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
    if (j - i >= 3) return std::nullopt;
    part = part * 10 + (s[j] - '0');
    ++j;
  }
  if (j != s.size()) return std::nullopt;
  if (j > i && part == 0) return std::nullopt;
  d.partition = static_cast<int>(part);
  return d;
}

std::string disk_letters(int disk) {
  std::string s;
  long n = static_cast<long>(disk) + 1;
  while (n > 0) {
    --n;
    s.insert(s.begin(), static_cast<char>('a' + n % 26));
    n /= 26;
  }
  return s;
}

std::vector<std::string> find_device_names(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while ((i = text.find("/dev/", i)) != std::string_view::npos) {
    size_t j = i + 5;
    while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])))) ++j;
    std::string_view cand = text.substr(i, j - i);
    if (auto d = parse_device_name(cand); d && d->prefix != "vd") out.emplace_back(cand);
    i = j;
  }
  return out;
}

}  // namespace vdkit::fixups
