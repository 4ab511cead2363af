#pragma once

#include <string_view>

#include "actors/subscription.hpp"
#include "engine/errors.hpp"

namespace annal::actors {

// The `filter` of a subscription: the `where` clause of the query language
// (docs/queries.md), optionally followed by `since` / `until`, e.g.
//   type = 'OrderPlaced' and data.amount > 100
// It is parsed as `from $all where <filter>` and compiled into a plan
// (engine/query/plan.hpp); the predicate then tests one event the way a
// query's scan does (time window, stream and category, type, then the JSON
// members of data and metadata). Relative times (`since -10m`) are resolved
// once, here. A result clause (`| count()` ...) is refused.
//
// Errors: errc::query_syntax (with the position in the filter text),
// invalid_argument for what plan::compile refuses or a result clause.
// Thread-safe: the predicate serializes its JSON readers with a mutex.
engine::result<event_filter> compile_where_filter(std::string_view where);

}  // namespace annal::actors
