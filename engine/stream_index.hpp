#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/types.hpp"

namespace annal::engine {

// Where an event lives: the lsn of its record and its index in the batch,
// packed as (lsn << 16) | index. Ordered like (lsn, index).
using event_location = std::uint64_t;

inline constexpr event_location pack_location(lsn record, std::uint32_t index) {
  return (record.value() << 16) | index;
}
inline constexpr lsn location_record(event_location l) { return lsn{l >> 16}; }
inline constexpr std::uint32_t location_index(event_location l) {
  return static_cast<std::uint32_t>(l & 0xffff);
}

struct snapshot_ref {
  stream_version version;
  lsn record;

  friend bool operator==(const snapshot_ref&, const snapshot_ref&) = default;
};

// Everything the partition knows about one stream.
struct stream_entry {
  std::string id;
  std::uint32_t number = 0;  // dense index in its stream_index
  std::uint64_t next_version = 0;   // version the next appended event gets
  std::uint64_t first_located = 0;  // version of locations[0]; older ones are gone
  std::vector<event_location> locations;  // ascending, one per version from first_located
  stream_metadata metadata;
  bool deleted = false;     // soft-deleted and not written since
  bool tombstoned = false;  // never writable again
  std::optional<snapshot_ref> snapshot;

  // Whether an expected-version check sees the stream as existing.
  bool exists() const { return next_version > 0 && !deleted && !tombstoned; }
  // Location of `v`. Requires: first_located <= v < next_version.
  event_location location(std::uint64_t v) const { return locations[v - first_located]; }
};

// Stream id -> stream_entry, with O(1) lookup by id and by a dense 32-bit
// stream number (used by the event-id window and checkpoints).
// Entries never move: references stay valid for the index's life.
// Not thread-safe: owned by one partition.
class stream_index {
 public:
  stream_entry* find(std::string_view id);
  const stream_entry* find(std::string_view id) const;
  // Returns the entry for `id`, creating an empty one if needed.
  stream_entry& get_or_create(std::string_view id);

  std::uint32_t number_of(const stream_entry& entry) const { return entry.number; }
  stream_entry& at(std::uint32_t number) { return entries_[number]; }
  const stream_entry& at(std::uint32_t number) const { return entries_[number]; }
  std::size_t size() const { return entries_.size(); }

  template <class F>
  void for_each(F&& f) const {
    for (const auto& e : entries_) f(e);
  }
  template <class F>
  void for_each(F&& f) {
    for (auto& e : entries_) f(e);
  }

 private:
  struct view_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  std::deque<stream_entry> entries_;
  // Keys view entries_[i].id, which never moves.
  std::unordered_map<std::string_view, std::uint32_t, view_hash, std::equal_to<>> by_id_;
};

}  // namespace annal::engine
