#pragma once

// The parsed form of a query (docs/queries.md). The parser (parser.hpp)
// makes it from text, query_codec.hpp turns it into the Cap'n Proto Query
// struct (schema/query.capnp) that travels between nodes, and the evaluator
// (evaluator.hpp) compiles it into a scan plan. Plain values: copyable, no
// invariants beyond those stated on each field.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/types.hpp"

namespace annal::engine::query {

// A literal in a predicate. JSON numbers compare as doubles.
struct null_value {
  friend bool operator==(const null_value&, const null_value&) = default;
};
using value = std::variant<null_value, bool, double, std::string>;

// What a predicate, a group key or an aggregate reads from an event.
struct field {
  enum class kind : std::uint8_t {
    type,      // the event type
    stream,    // the stream id
    category,  // the stream id up to its first '-'
    data,      // a member of the event's `data` JSON; `path` non-empty
    metadata,  // a member of the event's `metadata` JSON; `path` non-empty
  };
  kind what = kind::type;
  std::vector<std::string> path;  // object member names, outermost first

  friend bool operator==(const field&, const field&) = default;
};

enum class compare_op : std::uint8_t { eq, ne, lt, le, gt, ge, in, exists, prefix };

// `field op values`. eq..ge and prefix take one value (prefix: a string),
// in takes one or more, exists none. A missing field (or one of another
// JSON type than the value) makes every op false except ne, which is true.
struct comparison {
  field subject;
  compare_op op = compare_op::eq;
  std::vector<value> values;

  friend bool operator==(const comparison&, const comparison&) = default;
};

// A boolean expression tree. `children` holds the operands of and / or
// (two or more) and of not (exactly one); a compare node uses `compare`.
struct expr {
  enum class kind : std::uint8_t { compare, and_, or_, not_ };
  kind what = kind::compare;
  comparison compare;          // kind::compare only
  std::vector<expr> children;  // and_ / or_ / not_

  friend bool operator==(const expr&, const expr&) = default;
};

// Which streams a query reads.
struct source {
  enum class kind : std::uint8_t {
    all,            // $all
    stream,         // exactly `name`
    stream_prefix,  // ids starting with `name` ('orders-*')
    category,       // ids whose category (text before the first '-') is `name`
  };
  kind what = kind::all;
  std::string name;

  friend bool operator==(const source&, const source&) = default;
};

// A time bound: absolute, or relative to the moment the receiving node
// starts the query (negative: in the past). Relative bounds are resolved to
// absolute ones before the query leaves the receiving node.
struct time_bound {
  enum class kind : std::uint8_t { absolute, relative };
  kind what = kind::absolute;
  timestamp_us micros = 0;  // absolute: since the epoch; relative: offset

  friend bool operator==(const time_bound&, const time_bound&) = default;
};

enum class aggregate_kind : std::uint8_t {
  count,           // events (no field)
  sum,             // of numeric values
  avg,             // of numeric values; travels as (sum, count)
  min,             // of numeric values
  max,             // of numeric values
  count_distinct,  // exact: distinct JSON values (by canonical text)
  percentile,      // from a mergeable relative-error sketch
};

struct aggregate {
  aggregate_kind what = aggregate_kind::count;
  std::optional<field> subject;  // all but count
  double percentile = 0;         // percentile only: in (0, 100]

  friend bool operator==(const aggregate&, const aggregate&) = default;
};

// `| agg, ... [by f, ...] [every D] [top K]`.
struct aggregation {
  std::vector<aggregate> aggregates;  // one or more
  std::vector<field> group_by;        // empty: one group
  std::int64_t bucket_micros = 0;     // > 0: also group by floor(timestamp / bucket)
  std::uint32_t top = 0;              // > 0: keep the K groups with the largest first aggregate

  friend bool operator==(const aggregation&, const aggregation&) = default;
};

// `| first N` (oldest first) or `| last N` (newest first).
struct event_listing {
  std::uint32_t limit = 100;
  bool newest_first = false;

  friend bool operator==(const event_listing&, const event_listing&) = default;
};

struct query {
  source from;
  std::optional<expr> where;
  std::optional<time_bound> since;  // inclusive
  std::optional<time_bound> until;  // exclusive
  std::variant<event_listing, aggregation> result;  // default: first 100

  friend bool operator==(const query&, const query&) = default;
};

}  // namespace annal::engine::query
