#include "engine/stream_index.hpp"

namespace annal::engine {

stream_entry* stream_index::find(std::string_view id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &entries_[it->second];
}

const stream_entry* stream_index::find(std::string_view id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &entries_[it->second];
}

stream_entry& stream_index::get_or_create(std::string_view id) {
  if (auto* existing = find(id)) return *existing;
  auto& entry = entries_.emplace_back();
  entry.id.assign(id);
  entry.number = static_cast<std::uint32_t>(entries_.size() - 1);
  by_id_.emplace(entry.id, entry.number);
  return entry;
}


}  // namespace annal::engine
