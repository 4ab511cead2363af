#include "engine/query/accumulator.hpp"

namespace annal::engine::query {

std::size_t accumulator::merge(aggregate_kind kind, const accumulator& from) {
  switch (kind) {
    case aggregate_kind::count:
      count += from.count;
      return 0;
    case aggregate_kind::sum:
    case aggregate_kind::avg:
    case aggregate_kind::min:
    case aggregate_kind::max:
      count += from.count;
      sum += from.sum;
      if (from.min < min) min = from.min;
      if (from.max > max) max = from.max;
      return 0;
    case aggregate_kind::count_distinct: {
      if (!from.distinct) return 0;
      if (!distinct) distinct = std::make_unique<string_index>();
      std::size_t added = 0;
      for (const auto& v : from.distinct->keys()) {
        if (distinct->insert(v).second) ++added;
      }
      return added;
    }
    case aggregate_kind::percentile:
      if (!from.sketch) return 0;
      if (!sketch) sketch = std::make_unique<percentile_sketch>();
      sketch->merge(*from.sketch);
      return 0;
  }
  return 0;
}

value accumulator::final_value(const aggregate& a) const {
  switch (a.what) {
    case aggregate_kind::count:
      return static_cast<double>(count);
    case aggregate_kind::sum:
      return sum;
    case aggregate_kind::avg:
      if (count == 0) return null_value{};
      return sum / static_cast<double>(count);
    case aggregate_kind::min:
      if (count == 0) return null_value{};
      return min;
    case aggregate_kind::max:
      if (count == 0) return null_value{};
      return max;
    case aggregate_kind::count_distinct:
      return static_cast<double>(distinct ? distinct->size() : 0);
    case aggregate_kind::percentile: {
      if (!sketch) return null_value{};
      const auto p = sketch->percentile(a.percentile);
      if (!p) return null_value{};
      return *p;
    }
  }
  return null_value{};
}

}  // namespace annal::engine::query
