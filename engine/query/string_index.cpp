#include "engine/query/string_index.hpp"

// Inlined: keys are short, and a call into the shared library costs as much
// as hashing them.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace annal::engine::query {

std::uint64_t string_index::hash_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

void string_index::grow() {
  std::vector<slot> bigger(slots_.empty() ? 16 : slots_.size() * 2);
  const std::size_t mask = bigger.size() - 1;
  for (const slot& s : slots_) {
    if (s.number == npos) continue;
    std::size_t i = s.hash & mask;
    while (bigger[i].number != npos) i = (i + 1) & mask;
    bigger[i] = s;
  }
  slots_ = std::move(bigger);
}

std::pair<std::uint32_t, bool> string_index::insert(std::string_view key) {
  if ((keys_.size() + 1) * 2 > slots_.size()) grow();
  const std::uint64_t hash = hash_of(key);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].number != npos) {
    if (slots_[i].hash == hash && keys_[slots_[i].number] == key) return {slots_[i].number, false};
    i = (i + 1) & mask;
  }
  const auto number = static_cast<std::uint32_t>(keys_.size());
  keys_.emplace_back(key);
  slots_[i] = slot{hash, number};
  return {number, true};
}

std::uint32_t string_index::find(std::string_view key) const {
  if (slots_.empty()) return npos;
  const std::uint64_t hash = hash_of(key);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  while (slots_[i].number != npos) {
    if (slots_[i].hash == hash && keys_[slots_[i].number] == key) return slots_[i].number;
    i = (i + 1) & mask;
  }
  return npos;
}

}  // namespace annal::engine::query
