#pragma once

#include <string_view>

#include "engine/errors.hpp"
#include "engine/query/ast.hpp"

namespace annal::engine::query {

// Parses query text (grammar and examples in docs/queries.md, "Query
// language") into its tree. Keywords are case-insensitive, member names in
// field paths case-sensitive.
//
// Fails with errc::query_syntax and the message
//   "at <line>:<column> (offset <byte offset>): expected <what>, found <what>"
// naming the first offending token (lines and columns are 1-based; a column
// counts UTF-8 characters). Text longer than k_max_query_bytes (limits.hpp)
// fails without being read.
//
// A parsed query satisfies, and decode_query (query_codec.hpp) checks the same
// of every decoded one:
// - source: all has an empty name; the others a valid stream id
//   (engine::valid_stream_id) as their name, without '*' for stream and
//   stream_prefix;
// - field: data / metadata have a non-empty path, the others an empty one;
// - comparison: eq..ge hold one value, prefix one string, in one or more
//   values, exists none; numbers are finite;
// - expr: and / or have two or more children, not exactly one; at most
//   k_max_expr_depth and / or / not nodes on any path from the root;
// - time_bound: relative offsets are <= 0;
// - event_listing: limit in 1..k_max_limit;
// - aggregation: one or more aggregates; count has no subject, every other
//   kind has one; percentile in (0, 100] for percentile, 0 otherwise;
//   bucket_micros >= 0; top in 0..k_max_top.
//
// Pure function: thread-safe.
result<query> parse_query(std::string_view text);

}  // namespace annal::engine::query
