#include "engine/query/partial_result.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace annal::engine::query {

void trim_listing(std::vector<listed_event>& events, const event_listing& listing) {
  const auto before = [&](const listed_event& a, const listed_event& b) {
    return listed_before(a, b, listing.newest_first);
  };
  if (events.size() > listing.limit) {
    std::nth_element(events.begin(), events.begin() + listing.limit, events.end(), before);
    events.resize(listing.limit);
  }
  std::sort(events.begin(), events.end(), before);
}

status merge(partial_result& into, partial_result from, const plan& p) {
  for (const auto& [partition, at] : from.positions) {
    for (const auto& [mine, unused] : into.positions) {
      if (mine == partition) {
        return error{errc::invalid_argument,
                     fmt::format("partition {} is in both partial results", partition.value())};
      }
    }
  }
  into.positions.insert(into.positions.end(), from.positions.begin(), from.positions.end());
  std::sort(into.positions.begin(), into.positions.end());
  into.events_scanned += from.events_scanned;
  into.partial = into.partial || from.partial;

  if (p.is_listing()) {
    into.events.insert(into.events.end(), std::make_move_iterator(from.events.begin()),
                       std::make_move_iterator(from.events.end()));
    trim_listing(into.events, p.listing());
    return {};
  }
  if (into.groups.kinds().empty() && into.groups.size() == 0) {
    into.groups = std::move(from.groups);
    return {};
  }
  if (from.groups.size() == 0) return {};
  // Merge the smaller table into the larger one.
  if (from.groups.size() > into.groups.size()) std::swap(into.groups, from.groups);
  return into.groups.merge(from.groups);
}

}  // namespace annal::engine::query
