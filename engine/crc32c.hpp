#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace annal::engine {

// CRC32C (Castagnoli), as in iSCSI and ext4: crc32c("123456789") == 0xE3069283.
// `crc` continues a previous value (start with 0). Thread-safe.
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0);

}  // namespace annal::engine
