#pragma once

// What the scans of some partitions found: mergeable, so that partitions,
// then nodes, combine their results in any order before finish() presents
// them. A plain value (move-only), owned by whoever holds it; not
// thread-safe.

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/errors.hpp"
#include "engine/query/group_table.hpp"
#include "engine/query/listed_event.hpp"
#include "engine/query/plan.hpp"
#include "engine/types.hpp"

namespace annal::engine::query {

struct partial_result {
  // Per partition covered: the lsn its scan stopped at (the end it was given
  // when complete; the first record not scanned when stopped early).
  std::vector<std::pair<partition_id, lsn>> positions;
  // Events of every append-batch record walked, whether they matched or not.
  std::uint64_t events_scanned = 0;
  // Some scan stopped early at a limit, with scan_limits::allow_partial.
  bool partial = false;

  // Aggregations: the groups found.
  group_table groups;
  // Listings: the best at most N events, in answer order (listed_before).
  std::vector<listed_event> events;
};

// Adds `from` into `into` (both of `p`). Order does not matter: any merge
// order of the same partials gives the same answer.
// Errors: query_too_large when the merged groups pass a cap of plan.hpp;
// invalid_argument when both cover the same partition. On error `into` is
// left partly merged.
status merge(partial_result& into, partial_result from, const plan& p);

// Puts listed events in answer order and keeps the best `limit`.
void trim_listing(std::vector<listed_event>& events, const event_listing& listing);

}  // namespace annal::engine::query
