#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "engine/named_type.hpp"

namespace annal {

// Byte position of a record in a partition log (the log of all segments of
// one partition laid end to end). The first record is at lsn 0.
using lsn = named_type<std::uint64_t, struct lsn_tag>;
// Byte position of a record in the node log (the node-wide write-ahead log).
using node_log_position = named_type<std::uint64_t, struct node_log_position_tag>;
using partition_id = named_type<std::uint32_t, struct partition_id_tag>;
// 0-based version of an event within its stream.
using stream_version = named_type<std::uint64_t, struct stream_version_tag>;

// Microseconds since the Unix epoch.
using timestamp_us = std::int64_t;

// A 16-byte event id (a UUID).
using event_id = std::array<std::uint8_t, 16>;

// `a == b` in two word compares; std::array's == calls memcmp, which the hot
// paths (batch validation, the id window) would pay per event.
inline bool same_event_id(const event_id& a, const event_id& b) {
  std::uint64_t a0, a1, b0, b1;
  std::memcpy(&a0, a.data(), 8);
  std::memcpy(&a1, a.data() + 8, 8);
  std::memcpy(&b0, b.data(), 8);
  std::memcpy(&b1, b.data() + 8, 8);
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

}  // namespace annal

namespace annal::engine {

// Limits enforced on every append; see docs/log_format.md for the ones that
// are part of the format.
inline constexpr std::size_t k_max_stream_id_bytes = 256;
inline constexpr std::size_t k_max_event_type_bytes = 128;
// An event's position in its batch is packed into 16 bits of a location.
inline constexpr std::size_t k_format_max_batch_events = 65535;

// What an append requires of the stream's current state.
struct expected_version {
  enum class kind : std::uint8_t { any, no_stream, stream_exists, exact };

  kind what = kind::any;
  stream_version version{};  // meaningful for kind::exact only

  static expected_version any() { return {kind::any, {}}; }
  static expected_version no_stream() { return {kind::no_stream, {}}; }
  static expected_version stream_exists() { return {kind::stream_exists, {}}; }
  static expected_version exact(std::uint64_t v) { return {kind::exact, stream_version{v}}; }
};

// One event as given to an append.
struct event_input {
  event_id id{};
  std::string type;
  std::string data;
  std::string metadata;
};

// Retention and deletion settings of a stream (all zero: keep everything).
struct stream_metadata {
  std::uint64_t max_count = 0;        // keep at most this many latest events
  std::uint64_t max_age_seconds = 0;  // hide events older than this
  std::uint64_t truncate_before = 0;  // hide versions below this

  friend bool operator==(const stream_metadata&, const stream_metadata&) = default;
};

}  // namespace annal::engine
