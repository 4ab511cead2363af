#include "engine/partitioning.hpp"

#include <xxhash.h>


namespace annal::engine {
namespace {

// Valid UTF-8 (no overlongs, no surrogates) with no C0/C1 controls or DEL.
bool valid_text(std::string_view s, std::size_t max_bytes) {
  if (s.empty() || s.size() > max_bytes) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++p;
      continue;
    }
    std::uint32_t cp;
    int extra;
    if ((c & 0xe0) == 0xc0) { cp = c & 0x1f; extra = 1; }
    else if ((c & 0xf0) == 0xe0) { cp = c & 0x0f; extra = 2; }
    else if ((c & 0xf8) == 0xf0) { cp = c & 0x07; extra = 3; }
    else return false;
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr std::uint32_t min_for[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x80 && cp <= 0x9f) return false;  // C1 controls
    p += extra + 1;
  }
  return true;
}

}  // namespace

std::uint64_t stream_hash(std::string_view stream) {
  return XXH64(stream.data(), stream.size(), 0);
}

bool valid_stream_id(std::string_view stream) {
  return valid_text(stream, k_max_stream_id_bytes);
}

bool valid_event_type(std::string_view type) { return valid_text(type, k_max_event_type_bytes); }

}  // namespace annal::engine
