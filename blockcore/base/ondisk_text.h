// Text and ids stored inside on-disk structures: UTF-16 names (GPT, VHD, VHDX) to UTF-8, and GUIDs as strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vdkit {

// UTF-16 (little- or big-endian), ending at the first NUL or at `bytes`, as UTF-8. Unpaired surrogates become
// U+FFFD, so any input gives a valid string.
std::string utf16_to_utf8(const uint8_t* p, size_t bytes, bool big_endian = false);

// A Microsoft GUID (first three fields little-endian: GPT, VHDX) as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
std::string guid_string(const uint8_t* g);
// A UUID stored in byte order (VHD) in the same text form.
std::string uuid_string(const uint8_t* u);

}  // namespace vdkit
