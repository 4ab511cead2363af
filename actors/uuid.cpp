#include "actors/uuid.hpp"

#include <algorithm>
#include <cstring>
#include <random>

namespace annal::actors {

event_id random_uuid_v4() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  const std::uint64_t halves[2] = {rng(), rng()};
  event_id id;
  std::memcpy(id.data(), halves, sizeof halves);
  id[6] = static_cast<std::uint8_t>((id[6] & 0x0f) | 0x40);  // version 4
  id[8] = static_cast<std::uint8_t>((id[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return id;
}

bool is_nil(const event_id& id) {
  return std::all_of(id.begin(), id.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace annal::actors
