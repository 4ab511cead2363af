#include "engine/query/group_table.hpp"

#include <fmt/format.h>

#include "engine/query/plan.hpp"

namespace annal::engine::query {

error too_many_groups() {
  return error{errc::query_too_large,
               fmt::format("the query has more than {} groups", k_max_groups)};
}

error too_many_distinct_values() {
  return error{
      errc::query_too_large,
      fmt::format("a count_distinct has more than {} distinct values", k_max_distinct_values)};
}

std::uint32_t group_table::find_or_add(std::string_view key) {
  const std::uint32_t found = keys_.find(key);
  if (found != string_index::npos) return found;
  if (keys_.size() >= k_max_groups) return string_index::npos;
  const auto group = keys_.insert(key).first;
  states_.resize(states_.size() + kinds_.size());
  return group;
}

bool group_table::add_distinct(std::uint32_t group, std::size_t aggregate,
                               std::string_view encoded) {
  accumulator& a = at(group, aggregate);
  if (!a.distinct) a.distinct = std::make_unique<string_index>();
  if (a.distinct->find(encoded) != string_index::npos) return true;
  if (distinct_totals_[aggregate] >= k_max_distinct_values) return false;
  a.distinct->insert(encoded);
  ++distinct_totals_[aggregate];
  return true;
}

status group_table::merge(const group_table& from) {
  if (from.kinds_ != kinds_) {
    return error{errc::invalid_argument, "merging group tables of different aggregates"};
  }
  for (std::uint32_t g = 0; g < from.size(); ++g) {
    const std::uint32_t mine = find_or_add(from.key(g));
    if (mine == string_index::npos) return too_many_groups();
    for (std::size_t a = 0; a < kinds_.size(); ++a) {
      distinct_totals_[a] += at(mine, a).merge(kinds_[a], from.at(g, a));
      if (distinct_totals_[a] > k_max_distinct_values) return too_many_distinct_values();
    }
  }
  return {};
}

}  // namespace annal::engine::query
