#pragma once

#include "engine/query/ast.hpp"

namespace annal::engine::query {

// `q` with its relative time bounds made absolute against `now`, as the
// receiving node does once before a query fans out (so that every partition
// uses the same window). Absolute bounds are kept.
query resolve_relative_times(query q, timestamp_us now);

// Whether `q` still holds a relative time bound.
bool has_relative_time(const query& q);

}  // namespace annal::engine::query
