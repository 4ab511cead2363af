#include "engine/event_id_window.hpp"

#include <bit>
#include <cstring>

namespace annal::engine {
namespace {

constexpr std::size_t k_npos = static_cast<std::size_t>(-1);

}  // namespace

event_id_window::event_id_window(std::size_t capacity)
    : ring_(capacity), buckets_(std::bit_ceil(capacity * 2), k_empty) {
  mask_ = buckets_.size() - 1;
}

std::uint32_t hash_event_id(const event_id& id) {
  std::uint64_t a, b;
  std::memcpy(&a, id.data(), 8);
  std::memcpy(&b, id.data() + 8, 8);
  std::uint64_t h = (a ^ std::rotl(b, 29)) * 0x9e3779b97f4a7c15ull;
  return static_cast<std::uint32_t>(h >> 32);
}

namespace {
constexpr std::uint32_t position_of(std::uint64_t bucket) { return static_cast<std::uint32_t>(bucket); }
constexpr std::uint32_t hash_in(std::uint64_t bucket) { return static_cast<std::uint32_t>(bucket >> 32); }
}  // namespace

template <class Match>
std::size_t event_id_window::probe(std::uint32_t hash, Match matches) const {
  for (std::size_t b = home_of(hash);; b = (b + 1) & mask_) {
    if (buckets_[b] == k_empty) return k_npos;
    if (matches(buckets_[b])) return b;
  }
}

std::size_t event_id_window::find_bucket(const event_id& id, std::uint32_t hash) const {
  return probe(hash, [&](std::uint64_t bucket) {
    return hash_in(bucket) == hash && same_event_id(ring_[position_of(bucket)].id, id);
  });
}

std::size_t event_id_window::bucket_of_position(std::size_t pos) const {
  const std::uint64_t indexed = (std::uint64_t{ring_[pos].hash} << 32) | pos;
  return probe(ring_[pos].hash, [&](std::uint64_t bucket) { return bucket == indexed; });
}

const event_id_window::entry* event_id_window::find(const event_id& id) const {
  const std::size_t b = find_bucket(id, hash_event_id(id));
  return b == k_npos ? nullptr : &ring_[position_of(buckets_[b])].where;
}

void event_id_window::prefetch(const event_id& id) const {
  __builtin_prefetch(&buckets_[home_of(hash_event_id(id))]);
}

void event_id_window::erase_bucket(std::size_t hole) {
  // Backward-shift deletion keeps every probe chain unbroken.
  buckets_[hole] = k_empty;
  for (std::size_t b = (hole + 1) & mask_; buckets_[b] != k_empty; b = (b + 1) & mask_) {
    const std::size_t home = home_of(hash_in(buckets_[b]));
    // Move b into the hole unless its home lies cyclically in (hole, b].
    const bool home_after_hole = ((b - home) & mask_) < ((b - hole) & mask_);
    if (!home_after_hole) {
      buckets_[hole] = buckets_[b];
      buckets_[b] = k_empty;
      hole = b;
    }
  }
}

void event_id_window::insert(const event_id& id, entry where) {
  const std::uint32_t hash = hash_event_id(id);
  ++inserted_;
  if (const std::size_t existing = find_bucket(id, hash); existing != k_npos) {
    // Same id again: the older slot stays in the ring but stops being indexed.
    erase_bucket(existing);
  }
  std::size_t pos;
  if (count_ == ring_.size()) {
    pos = head_;
    if (const std::size_t old = bucket_of_position(pos); old != k_npos) erase_bucket(old);
    head_ = wrap(head_ + 1);
    // The evictions to come probe random buckets: start loading one early.
    __builtin_prefetch(&buckets_[home_of(ring_[wrap(pos + k_evict_prefetch)].hash)]);
  } else {
    pos = wrap(head_ + count_);
    ++count_;
  }
  ring_[pos] = ring_slot{id, hash, where};
  std::size_t b = home_of(hash);
  while (buckets_[b] != k_empty) b = (b + 1) & mask_;
  buckets_[b] = (std::uint64_t{hash} << 32) | pos;
}

}  // namespace annal::engine
