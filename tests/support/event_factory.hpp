#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/types.hpp"

// Test events with predictable ids. Header-only so that any test can use it
// without a build change.
//
// Thread-safe as functions (no state).
namespace annal::testing {

// A 16-byte id made from `n`: bytes 8..15 hold `n` big-endian, bytes 0..7
// hold `prefix ^ k_id_salt` big-endian (the salt keeps (0, 0) from being the
// nil UUID, which the engine rejects). Distinct (prefix, n) pairs give
// distinct ids; ids with the same prefix share their first 8 bytes, like
// time-ordered UUIDs created in the same millisecond.
inline constexpr std::uint64_t k_id_salt = 0x416e6e616c000000;  // "Annal"
inline event_id make_event_id(std::uint64_t n, std::uint64_t prefix = 0) {
  event_id id{};
  const std::uint64_t high = prefix ^ k_id_salt;
  for (int i = 0; i < 8; ++i) {
    id[static_cast<std::size_t>(7 - i)] = static_cast<std::uint8_t>(high >> (8 * i));
    id[static_cast<std::size_t>(15 - i)] = static_cast<std::uint8_t>(n >> (8 * i));
  }
  return id;
}

// An event with id make_event_id(n) and the given type, data and metadata.
inline engine::event_input make_event(std::uint64_t n, std::string type = "test-event",
                                      std::string data = "{}", std::string metadata = {}) {
  return engine::event_input{make_event_id(n), std::move(type), std::move(data),
                             std::move(metadata)};
}

// `count` events with ids first, first + 1, ...; the data of each names its
// id ("{\"n\":<id>}") so that a read can be checked against it.
inline std::vector<engine::event_input> make_events(std::uint64_t first, std::size_t count,
                                                    const std::string& type = "test-event") {
  std::vector<engine::event_input> events;
  events.reserve(count);
  for (std::uint64_t n = first; n < first + count; ++n) {
    std::string data = "{\"n\":";
    data += std::to_string(n);
    data += '}';
    events.push_back(make_event(n, type, std::move(data)));
  }
  return events;
}

}  // namespace annal::testing
