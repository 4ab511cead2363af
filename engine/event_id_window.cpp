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

std::size_t event_id_window::find_bucket(const event_id& id) const {
  const std::uint32_t hash = hash_event_id(id);
  for (std::size_t b = home_of(hash);; b = (b + 1) & mask_) {
    const std::uint64_t bucket = buckets_[b];
    if (bucket == k_empty) return k_npos;
    if (hash_in(bucket) == hash && ring_[position_of(bucket)].id == id) return b;
  }
}

const event_id_window::entry* event_id_window::find(const event_id& id) const {
  const std::size_t b = find_bucket(id);
  return b == k_npos ? nullptr : &ring_[position_of(buckets_[b])].where;
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
  if (const std::size_t existing = find_bucket(id); existing != k_npos) {
    // Same id again: the older slot stays in the ring but stops being indexed.
    erase_bucket(existing);
  }
  std::size_t pos;
  if (count_ == ring_.size()) {
    pos = head_;
    const std::size_t old = find_bucket(ring_[pos].id);
    if (old != k_npos && position_of(buckets_[old]) == pos) erase_bucket(old);
    head_ = (head_ + 1) % ring_.size();
  } else {
    pos = (head_ + count_) % ring_.size();
    ++count_;
  }
  ring_[pos] = ring_slot{id, where};
  const std::uint32_t hash = hash_event_id(id);
  std::size_t b = home_of(hash);
  while (buckets_[b] != k_empty) b = (b + 1) & mask_;
  buckets_[b] = (std::uint64_t{hash} << 32) | pos;
}

}  // namespace annal::engine
