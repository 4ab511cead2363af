#pragma once

// The groups of an aggregation: a flat hash map from group key (the bytes of
// group_key.hpp) to one accumulator per aggregate. Enforces the caps of
// plan.hpp: at most k_max_groups groups, at most k_max_distinct_values
// distinct values per count_distinct aggregate (summed over its groups).
//
// Not thread-safe: owned by one partial_result.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/errors.hpp"
#include "engine/query/accumulator.hpp"
#include "engine/query/ast.hpp"
#include "engine/query/string_index.hpp"

namespace annal::engine::query {

class group_table {
 public:
  group_table() = default;
  // A table for aggregates of these kinds, in the plan's order.
  explicit group_table(std::vector<aggregate_kind> kinds)
      : kinds_(std::move(kinds)), distinct_totals_(kinds_.size(), 0) {}

  const std::vector<aggregate_kind>& kinds() const { return kinds_; }
  std::size_t size() const { return keys_.size(); }

  // The group of `key`, added with empty accumulators if new; npos when
  // adding it would pass k_max_groups.
  std::uint32_t find_or_add(std::string_view key);
  std::string_view key(std::uint32_t group) const { return keys_.key(group); }
  accumulator& at(std::uint32_t group, std::size_t aggregate) {
    return states_[group * kinds_.size() + aggregate];
  }
  const accumulator& at(std::uint32_t group, std::size_t aggregate) const {
    return states_[group * kinds_.size() + aggregate];
  }

  // Adds the key encoding of one value to a count_distinct state. False when
  // the aggregate would pass k_max_distinct_values.
  bool add_distinct(std::uint32_t group, std::size_t aggregate, std::string_view encoded);
  std::size_t distinct_total(std::size_t aggregate) const { return distinct_totals_[aggregate]; }

  // Adds every group of `from` (same kinds). Errors: query_too_large when a
  // cap is passed (this table is then partly merged); invalid_argument when
  // the kinds differ.
  status merge(const group_table& from);

 private:
  std::vector<aggregate_kind> kinds_;
  string_index keys_;
  std::vector<accumulator> states_;  // group * kinds_.size() + aggregate
  std::vector<std::size_t> distinct_totals_;
};

// The errors for passing the caps.
error too_many_groups();
error too_many_distinct_values();

}  // namespace annal::engine::query
