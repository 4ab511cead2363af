#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "actors/read_all.hpp"
#include "engine/errors.hpp"

// The read-all resume position as one URL-safe string (HTTP `next` and
// `from`, the CLI's --from): docs/http-api.md, "Read all". Pure functions:
// thread-safe.
//
// Bytes, then base64url without padding (RFC 4648 section 5):
//   version          1 byte, 1
//   partition count  varint (LEB128)
//   per partition    varint(lsn << 1 | has_index), then varint(index) if has_index
//   CRC32C           4 bytes little-endian, of every byte before it
// Decoding refuses anything else (including a token whose checksum does not
// match: a typo, or a cut copy-paste) with errc::invalid_argument.
namespace annal::net {

inline constexpr std::uint8_t k_read_all_token_version = 1;
// More partitions than a cluster can have (the CLI allows 1..65536).
inline constexpr std::size_t k_read_all_token_max_partitions = 65536;

std::string encode_read_all_token(const std::vector<actors::all_position>& positions);
engine::result<std::vector<actors::all_position>> decode_read_all_token(std::string_view token);

}  // namespace annal::net
