#pragma once

// The state of one aggregate over one group, as scans build it and merge()
// combines it. Which members are used depends on the aggregate's kind:
//
//   count            count = events
//   sum, avg         count = numeric values seen, sum (avg travels as sum, count)
//   min, max         count = numeric values seen, min, max
//   count_distinct   distinct: the values' key encodings (group_key.hpp)
//   percentile       sketch
//
// Not thread-safe: owned by a group_table.

#include <cstdint>
#include <limits>
#include <memory>

#include "engine/query/ast.hpp"
#include "engine/query/percentile_sketch.hpp"
#include "engine/query/string_index.hpp"

namespace annal::engine::query {

struct accumulator {
  std::uint64_t count = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::unique_ptr<string_index> distinct;
  std::unique_ptr<percentile_sketch> sketch;

  // Adds one numeric value to a sum / avg / min / max / percentile state.
  void add_number(aggregate_kind kind, double v) {
    if (kind == aggregate_kind::percentile) {
      if (!sketch) sketch = std::make_unique<percentile_sketch>();
      sketch->add(v);
      return;
    }
    ++count;
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }

  // Adds `from` (of the same kind) into this state. Returns the number of
  // distinct values that were new here (count_distinct; 0 otherwise).
  std::size_t merge(aggregate_kind kind, const accumulator& from);

  // The aggregate's result: count and count_distinct a number, sum a number
  // (0 when empty), avg / min / max / percentile a number or null when no
  // numeric value was seen.
  value final_value(const aggregate& a) const;
};

}  // namespace annal::engine::query
