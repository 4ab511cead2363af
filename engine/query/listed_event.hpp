#pragma once

// An event returned by `first N` / `last N`: an owning copy, since it
// outlives the scan's record buffers and travels between nodes.

#include <cstdint>
#include <string>
#include <tuple>

#include "engine/types.hpp"

namespace annal::engine::query {

struct listed_event {
  std::string stream;
  partition_id partition;
  lsn position;             // lsn of the event's record
  std::uint32_t index = 0;  // position in its record's batch
  event_id id{};
  std::string type;
  std::string data;
  std::string metadata;
  stream_version version;
  timestamp_us timestamp = 0;

  friend bool operator==(const listed_event&, const listed_event&) = default;
};

// The listing order, oldest first: (timestamp, partition, lsn, index). A
// total order: no two events share partition, lsn and index.
inline auto listing_key(const listed_event& e) {
  return std::make_tuple(e.timestamp, e.partition.value(), e.position.value(), e.index);
}

// Whether `a` comes before `b` in the answer of a listing (oldest first, or
// newest first for `last N`).
inline bool listed_before(const listed_event& a, const listed_event& b, bool newest_first) {
  return newest_first ? listing_key(b) < listing_key(a) : listing_key(a) < listing_key(b);
}

}  // namespace annal::engine::query
