#pragma once

#include <cstdint>
#include <vector>

#include "engine/types.hpp"

namespace annal::engine {

// The most recent `capacity` event ids of a partition and where each landed,
// so that a retried append under expected version `any` is recognised.
// A fixed ring plus an open-addressing table: no allocation after
// construction. Not thread-safe: owned by one partition.
class event_id_window {
 public:
  struct entry {
    std::uint32_t stream = 0;  // stream_index number
    std::uint64_t version = 0;
  };

  // Requires: capacity > 0.
  explicit event_id_window(std::size_t capacity);

  // nullptr if `id` is not among the recent ids.
  const entry* find(const event_id& id) const;
  // Records `id`; the oldest id is forgotten once the window is full. A
  // repeated id now points at its newest place.
  void insert(const event_id& id, entry where);

  std::size_t size() const { return count_; }
  std::size_t capacity() const { return ring_.size(); }

  // Visits (id, entry) oldest first.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const auto& slot = ring_[(head_ + i) % ring_.size()];
      f(slot.id, slot.where);
    }
  }

 private:
  struct ring_slot {
    event_id id{};
    entry where;
  };
  static constexpr std::uint32_t k_empty = 0xffffffff;

  std::size_t bucket_of(const event_id& id) const;
  // Bucket holding ring position `pos` for `id`, or npos.
  std::size_t find_bucket(const event_id& id) const;
  void erase_bucket(std::size_t bucket);

  std::vector<ring_slot> ring_;
  std::size_t head_ = 0;   // oldest slot
  std::size_t count_ = 0;
  std::vector<std::uint32_t> buckets_;  // ring positions, k_empty when free; size is a power of 2
  std::size_t mask_ = 0;
};

}  // namespace annal::engine
