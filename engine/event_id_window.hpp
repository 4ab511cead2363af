#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/types.hpp"

namespace annal::engine {

// A 32-bit hash of an event id that mixes both halves (client ids may be
// time-ordered, UUIDv7, in one half).
std::uint32_t hash_event_id(const event_id& id);

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
  // A hint that `find(id)` and `insert(id, ...)` come soon: starts loading
  // the bucket they probe first. The table is larger than the caches, so
  // that load is a miss that can overlap the caller's other work.
  void prefetch(const event_id& id) const;
  // Records `id`; the oldest id is forgotten once the window is full. A
  // repeated id now points at its newest place.
  void insert(const event_id& id, entry where);

  std::size_t size() const { return count_; }
  std::size_t capacity() const { return ring_.size(); }
  // Inserts ever made. Replaying the inserts made since some count, in
  // order, onto a window that held the state at that count rebuilds this one
  // (delta checkpoints rely on it).
  std::uint64_t inserted() const { return inserted_; }

  // Visits (id, entry) oldest first.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < count_; ++i) {
      const auto& slot = ring_[(head_ + i) % ring_.size()];
      f(slot.id, slot.where);
    }
  }
  // Visits the newest min(n, size()) (id, entry), oldest of them first.
  template <class F>
  void for_each_newest(std::size_t n, F&& f) const {
    const std::size_t skip = count_ - std::min(n, count_);
    for (std::size_t i = skip; i < count_; ++i) {
      const auto& slot = ring_[(head_ + i) % ring_.size()];
      f(slot.id, slot.where);
    }
  }

 private:
  struct ring_slot {
    event_id id{};
    std::uint32_t hash = 0;  // hash_event_id(id), kept to find its bucket on eviction
    entry where;
  };
  // How many inserts ahead the bucket of the slot to be evicted is prefetched.
  static constexpr std::size_t k_evict_prefetch = 8;
  // A bucket packs (hash << 32) | ring position, so probes compare hashes
  // without touching the ring; k_empty marks a free bucket.
  static constexpr std::uint64_t k_empty = ~std::uint64_t{0};

  std::size_t home_of(std::uint32_t hash) const { return hash & mask_; }
  // `pos` taken into the ring; divides only when it is past the end.
  std::size_t wrap(std::size_t pos) const { return pos < ring_.size() ? pos : pos % ring_.size(); }
  // The first bucket on `hash`'s probe chain for which `matches(bucket)`, or
  // npos once the chain ends.
  template <class Match>
  std::size_t probe(std::uint32_t hash, Match matches) const;
  // The bucket indexing `id` (whose hash is `hash`), or npos.
  std::size_t find_bucket(const event_id& id, std::uint32_t hash) const;
  // The bucket indexing ring position `pos`, or npos if it stopped being indexed.
  std::size_t bucket_of_position(std::size_t pos) const;
  void erase_bucket(std::size_t bucket);

  std::vector<ring_slot> ring_;
  std::size_t head_ = 0;   // oldest slot
  std::size_t count_ = 0;
  std::uint64_t inserted_ = 0;
  std::vector<std::uint64_t> buckets_;  // size is a power of 2, at least twice the capacity
  std::size_t mask_ = 0;
};

}  // namespace annal::engine
