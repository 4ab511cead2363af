#pragma once

// A query compiled for evaluation (docs/queries.md, "Aggregates and
// results"): the fields it reads numbered as slots, the where-expression
// split into conjuncts by cost, the JSON members to extract as a trie, and
// the shape of its result. partition_scan evaluates a plan over one
// partition; merge() and finish() combine and present what the scans found.
//
// Immutable once compiled, so one plan is shared (std::shared_ptr<const
// plan>) by every scan of a query and is thread-safe to read.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/errors.hpp"
#include "engine/query/ast.hpp"
#include "engine/query/field_value.hpp"
#include "engine/types.hpp"

namespace annal::engine::query {

// Caps that keep a query's memory bounded; going over one is
// errc::query_too_large (also with scan_limits::allow_partial).
inline constexpr std::size_t k_max_groups = 100'000;
// Distinct values of one count_distinct aggregate, summed over its groups.
inline constexpr std::size_t k_max_distinct_values = 1'000'000;
// The N of `first N` / `last N`.
inline constexpr std::uint32_t k_max_listed_events = 100'000;
// Bytes of the events a listing's candidates hold (stream id, type, data and
// metadata), over the node's scans of one query: 10,000 events of up to
// 1 MiB each must not fill the node's memory. The default of
// scan_limits::max_listed_bytes.
inline constexpr std::uint64_t k_max_listed_bytes = 64u << 20;

// The category of a stream: its id up to the first '-', or the whole id when
// it has none.
inline std::string_view category_of(std::string_view stream) {
  return stream.substr(0, stream.find('-'));
}

// The JSON members one document (data or metadata) must yield, as a trie of
// member names. nodes[0] is the document itself.
struct json_path_node {
  std::string name;        // member name (empty for the root)
  std::int32_t slot = -1;  // the slot this member fills; -1: only on the way to deeper ones
  std::vector<std::uint32_t> children;  // indices into json_paths::nodes
};

struct json_paths {
  std::vector<json_path_node> nodes{1};
  std::vector<std::uint32_t> slots;  // every slot filled from this document

  bool empty() const { return slots.empty(); }
};

// Which JSON documents something reads, as bits.
inline constexpr std::uint8_t k_reads_data = 1;
inline constexpr std::uint8_t k_reads_metadata = 2;

// A where-expression node compiled against slots. Literals are checked at
// compile time (see plan::compile).
struct compiled_expr {
  expr::kind what = expr::kind::compare;
  std::uint32_t slot = 0;  // compare: the field's slot
  compare_op op = compare_op::eq;
  std::vector<value> values;            // compare: the literals
  std::vector<compiled_expr> children;  // and_ / or_ / not_
  std::uint8_t documents = 0;           // k_reads_* of this node and its children
};

// The predicate's value for the slot values of one event. Comparison rules:
// docs/queries.md (a missing field or a type mismatch: false, except ne).
bool evaluate(const compiled_expr& e, const field_value* slots);

class plan {
  // Only compile() makes plans (through std::make_shared).
  struct token {
    explicit token() = default;
  };

 public:
  explicit plan(token) {}

  // Checks and compiles `q`.
  // Requires: relative time bounds resolved to absolute ones.
  // Errors: invalid_argument for a relative bound, an empty JSON path, a
  // comparison whose literals do not fit its operator (lt/le/gt/ge take one
  // number or string, prefix one string, eq/ne one value, in one or more,
  // exists none), an and/or without operands or a not without exactly one,
  // an aggregation without aggregates, count with a field or another
  // aggregate without one, a percentile outside (0, 100], a negative time
  // bucket, a listing of 0 events; query_too_large for a listing of more than
  // k_max_listed_events.
  static result<std::shared_ptr<const plan>> compile(query q);

  const query& source_query() const { return query_; }

  // --- Filters, cheapest first.
  bool stream_matches(std::string_view stream) const;
  const std::optional<timestamp_us>& since() const { return since_; }  // inclusive
  const std::optional<timestamp_us>& until() const { return until_; }  // exclusive
  // The conjuncts of the where-expression: those reading only stream and
  // category (tested once per record), those also reading the type (once per
  // event), and those reading data or metadata JSON.
  const std::vector<compiled_expr>& record_filters() const { return record_filters_; }
  const std::vector<compiled_expr>& event_filters() const { return event_filters_; }
  const std::vector<compiled_expr>& json_filters() const { return json_filters_; }

  // --- Fields: every distinct field the query reads has one slot.
  std::size_t slot_count() const { return slots_.size(); }
  const field& slot_field(std::uint32_t slot) const { return slots_[slot]; }
  const std::optional<std::uint32_t>& type_slot() const { return type_slot_; }
  const std::optional<std::uint32_t>& stream_slot() const { return stream_slot_; }
  const std::optional<std::uint32_t>& category_slot() const { return category_slot_; }
  const json_paths& data_paths() const { return data_paths_; }
  const json_paths& metadata_paths() const { return metadata_paths_; }
  // The documents group keys and aggregates read (k_reads_* bits).
  std::uint8_t result_documents() const { return result_documents_; }

  // --- Result.
  bool is_listing() const { return std::holds_alternative<event_listing>(query_.result); }
  // Requires: is_listing().
  const event_listing& listing() const { return std::get<event_listing>(query_.result); }
  // Requires: !is_listing().
  const aggregation& aggregates() const { return std::get<aggregation>(query_.result); }
  // Slots of the group_by fields, in order.
  const std::vector<std::uint32_t>& group_slots() const { return group_slots_; }
  // Per aggregate its field's slot; -1 for count().
  const std::vector<std::int32_t>& aggregate_slots() const { return aggregate_slots_; }
  bool bucketed() const { return !is_listing() && aggregates().bucket_micros > 0; }
  // Columns of a group key: "bucket" when bucketed, then the group_by fields.
  std::size_t key_columns() const { return group_slots_.size() + (bucketed() ? 1 : 0); }
  // Names of the result table's columns: key columns, then aggregates
  // ("bucket", "data.region", "count()", "sum(data.amount)", "p99(data.latency)").
  const std::vector<std::string>& column_names() const { return column_names_; }

 private:
  result<std::uint32_t> slot_of(const field& f);
  result<compiled_expr> compile_expr(const expr& e);

  query query_;
  std::optional<timestamp_us> since_;
  std::optional<timestamp_us> until_;
  std::vector<compiled_expr> record_filters_;
  std::vector<compiled_expr> event_filters_;
  std::vector<compiled_expr> json_filters_;
  std::vector<field> slots_;
  std::optional<std::uint32_t> type_slot_;
  std::optional<std::uint32_t> stream_slot_;
  std::optional<std::uint32_t> category_slot_;
  json_paths data_paths_;
  json_paths metadata_paths_;
  std::uint8_t result_documents_ = 0;
  std::vector<std::uint32_t> group_slots_;
  std::vector<std::int32_t> aggregate_slots_;
  std::vector<std::string> column_names_;
};

// A field as a column name: "type", "stream", "category", "data.a.b",
// "metadata.x".
std::string field_name(const field& f);
// An aggregate as a column name: "count()", "sum(data.amount)", "p99(data.latency)".
std::string aggregate_name(const aggregate& a);

}  // namespace annal::engine::query
