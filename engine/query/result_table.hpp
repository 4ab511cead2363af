#pragma once

// The final answer of a query, made by finish() from the merged partial
// result of every partition: a table for an aggregation, events for a
// listing. Plain values.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "engine/query/ast.hpp"
#include "engine/query/listed_event.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/plan.hpp"
#include "engine/types.hpp"

namespace annal::engine::query {

// Columns: the key columns ("bucket" first when bucketed, then the group_by
// fields), then one per aggregate; names from plan::column_names(). Every
// row has one value per column. Numbers (counts too) are doubles; a bucket
// is its start in microseconds since the epoch; an object or array key is
// its JSON text as a string.
struct result_table {
  std::vector<std::string> columns;
  std::vector<std::vector<value>> rows;

  friend bool operator==(const result_table&, const result_table&) = default;
};

struct query_answer {
  std::variant<result_table, std::vector<listed_event>> body;
  std::vector<std::pair<partition_id, lsn>> positions;  // ascending by partition
  std::uint64_t events_scanned = 0;
  bool partial = false;

  friend bool operator==(const query_answer&, const query_answer&) = default;
};

// The answer from everything merged into `r`. Rows are in key order
// (group_key.hpp: null < false < true < numbers < strings < JSON text;
// buckets ascending); with top K, the K groups with the largest first
// aggregate, largest first (null smallest; ties in key order). Without key
// columns there is exactly one row, also when no event matched.
// Requires: `r` was made for `p`.
query_answer finish(partial_result r, const plan& p);

}  // namespace annal::engine::query
