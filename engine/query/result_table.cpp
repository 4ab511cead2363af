#include "engine/query/result_table.hpp"

#include <algorithm>
#include <numeric>

#include "engine/query/group_key.hpp"

namespace annal::engine::query {
namespace {

value to_value(const field_value& v) {
  switch (v.what) {
    case field_value::kind::missing:
    case field_value::kind::null:
      return null_value{};
    case field_value::kind::boolean:
      return v.boolean;
    case field_value::kind::number:
      return v.number;
    case field_value::kind::string:
    case field_value::kind::json:
      return std::string(v.text);
  }
  return null_value{};
}

// Orders first aggregates for top K: null below every number.
bool ranks_higher(const value& a, const value& b) {
  const double* x = std::get_if<double>(&a);
  const double* y = std::get_if<double>(&b);
  if (!x || !y) return x && !y;
  return *x > *y;
}

}  // namespace

query_answer finish(partial_result r, const plan& p) {
  query_answer answer;
  answer.positions = std::move(r.positions);
  std::sort(answer.positions.begin(), answer.positions.end());
  answer.events_scanned = r.events_scanned;
  answer.partial = r.partial;

  if (p.is_listing()) {
    trim_listing(r.events, p.listing());
    answer.body = std::move(r.events);
    return answer;
  }

  const auto& agg = p.aggregates();
  group_table& groups = r.groups;
  if (groups.kinds().empty()) {
    std::vector<aggregate_kind> kinds;
    for (const auto& a : agg.aggregates) kinds.push_back(a.what);
    groups = group_table(std::move(kinds));
  }
  if (p.key_columns() == 0 && groups.size() == 0) (void)groups.find_or_add({});

  struct row_of {
    std::uint32_t group;
    value first;  // the first aggregate, for top K
  };
  std::vector<row_of> order(groups.size());
  for (std::uint32_t g = 0; g < groups.size(); ++g) {
    order[g].group = g;
    if (agg.top > 0) order[g].first = groups.at(g, 0).final_value(agg.aggregates[0]);
  }
  const auto key_less = [&](const row_of& a, const row_of& b) {
    return compare_keys(groups.key(a.group), groups.key(b.group)) < 0;
  };
  if (agg.top > 0) {
    const auto better = [&](const row_of& a, const row_of& b) {
      if (ranks_higher(a.first, b.first)) return true;
      if (ranks_higher(b.first, a.first)) return false;
      return key_less(a, b);
    };
    if (order.size() > agg.top) {
      std::nth_element(order.begin(), order.begin() + agg.top, order.end(), better);
      order.resize(agg.top);
    }
    std::sort(order.begin(), order.end(), better);
  } else {
    std::sort(order.begin(), order.end(), key_less);
  }

  result_table table;
  table.columns = p.column_names();
  table.rows.reserve(order.size());
  for (const auto& o : order) {
    std::vector<value> row;
    row.reserve(table.columns.size());
    const auto key = decode_key(groups.key(o.group), p.key_columns());
    if (key) {
      for (const auto& v : *key) row.push_back(to_value(v));
    }
    for (std::size_t a = 0; a < agg.aggregates.size(); ++a) {
      row.push_back(groups.at(o.group, a).final_value(agg.aggregates[a]));
    }
    table.rows.push_back(std::move(row));
  }
  answer.body = std::move(table);
  return answer;
}

}  // namespace annal::engine::query
