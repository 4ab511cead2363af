#pragma once

#include <cstdint>
#include <string_view>

#include "engine/types.hpp"

namespace annal::engine {

// The stream -> partition hash: XXH64 with seed 0 of the stream id's bytes.
// Part of the on-disk and wire format: it must never change.
std::uint64_t stream_hash(std::string_view stream);

inline partition_id partition_for(std::string_view stream, std::uint32_t partition_count) {
  return partition_id{static_cast<std::uint32_t>(stream_hash(stream) % partition_count)};
}

// A stream id is 1..256 bytes of valid UTF-8 without control characters.
bool valid_stream_id(std::string_view stream);
// Event types follow the same rules with a limit of 128 bytes.
bool valid_event_type(std::string_view type);

}  // namespace annal::engine
