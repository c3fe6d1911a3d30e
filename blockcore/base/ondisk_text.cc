// UTF-16 decoding and GUID formatting for on-disk names and ids.
#include "blockcore/base/ondisk_text.h"

#include <cstdio>

#include "blockcore/base/bytes.h"

namespace vdkit {

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | cp >> 6);
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | cp >> 12);
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | cp >> 18);
    out += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
    out += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

}  // namespace

std::string utf16_to_utf8(const uint8_t* p, size_t bytes, bool big_endian) {
  auto unit = [&](size_t i) -> uint32_t { return big_endian ? load_be16(p + i) : load_le16(p + i); };
  std::string out;
  for (size_t i = 0; i + 1 < bytes; i += 2) {
    uint32_t u = unit(i);
    if (u == 0) break;
    if (u >= 0xd800 && u < 0xdc00 && i + 3 < bytes) {
      uint32_t lo = unit(i + 2);
      if (lo >= 0xdc00 && lo < 0xe000) {
        append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
        i += 2;
        continue;
      }
      u = 0xfffd;
    } else if (u >= 0xd800 && u < 0xe000) {
      u = 0xfffd;
    }
    append_utf8(out, u);
  }
  return out;
}

std::string guid_string(const uint8_t* g) {
  char b[40];
  std::snprintf(b, sizeof b, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", load_le32(g), load_le16(g + 4),
                load_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
  return b;
}

std::string uuid_string(const uint8_t* u) {
  char b[40];
  std::snprintf(b, sizeof b, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", load_be32(u), load_be16(u + 4),
                load_be16(u + 6), u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return b;
}

}  // namespace vdkit
