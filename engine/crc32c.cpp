#include "engine/crc32c.hpp"

#include <isa-l/crc.h>

namespace annal::engine {

std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc) {
  // ISA-L's crc32_iscsi neither pre- nor post-inverts; do both here so the
  // result is the standard CRC32C and chaining works.
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<std::byte*>(data.data()));
  std::uint32_t state = ~crc;
  std::size_t left = data.size();
  while (left > 0) {
    const int chunk = left > (1u << 30) ? (1 << 30) : static_cast<int>(left);
    state = crc32_iscsi(bytes, chunk, state);
    bytes += chunk;
    left -= static_cast<std::size_t>(chunk);
  }
  return ~state;
}

}  // namespace annal::engine
