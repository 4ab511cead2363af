#pragma once

// Partial results and answers in their wire form (schema/query_result.capnp):
// a node sends the partial result of its partitions to the node running the
// query, which sends the answer to the client. Decoders check everything
// the schema comments promise, so a decoded value is as good as one made
// locally; they answer malformed_request otherwise (a Cap'n Proto
// kj::Exception included). Stateless functions; thread-safe.

#include "engine/errors.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/plan.hpp"
#include "engine/query/result_table.hpp"
#include "schema/query_result.capnp.h"

namespace annal::engine::query {

// Requires: `r` was made for `p`.
void encode_partial_result(const partial_result& r, const plan& p,
                           wire::PartialResult::Builder out);
// A partial result for `p` (which the sender also scanned with). Checks:
// each partition once; the union arm of `p`'s kind; for a listing at most N
// well-formed events (valid stream id and type), no two at the same
// partition, lsn and index; for an aggregation at most k_max_groups groups
// with distinct keys of plan::key_columns() values (finite numbers, the
// bucket a number), one accumulator per aggregate, distinct values that are
// well-formed single-value key encodings without repeats and within
// k_max_distinct_values per aggregate, sketch buckets in range, min <= max
// (not NaN) when count > 0.
result<partial_result> decode_partial_result(wire::PartialResult::Reader in, const plan& p);

void encode_query_answer(const query_answer& a, wire::QueryAnswer::Builder out);
// Checks: positions ascending without repeats; a table has at least one
// column, at most k_max_groups rows, one value per column in every row and no
// json cells; listed events well-formed (without repeats).
result<query_answer> decode_query_answer(wire::QueryAnswer::Reader in);

}  // namespace annal::engine::query
