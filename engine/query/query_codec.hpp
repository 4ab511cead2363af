#pragma once

#include <string>
#include <string_view>

#include "engine/errors.hpp"
#include "engine/query/ast.hpp"
#include "engine/query/limits.hpp"
#include "schema/query.capnp.h"

// Conversions between a parsed query (ast.hpp) and the Cap'n Proto Query
// struct (schema/query.capnp) that travels between nodes. Pure functions:
// thread-safe.
namespace annal::engine::query {

// The Cap'n Proto nesting limit (capnp::ReaderOptions::nestingLimit) a
// reader needs for the deepest valid Query at its root: the where clause,
// two levels per and / or (the list, then its element) and one per not, and
// the comparison below the last. A reader whose Query sits deeper in an
// enclosing message adds that depth (the default limit of 64 is too small).
inline constexpr int k_query_nesting_limit = 2 * k_max_expr_depth + 16;

// Writes `q` into `out`.
// Requires: `q` satisfies what parse_query guarantees (parser.hpp), as every
// query from parse_query or decode_query does.
void encode_query(const query& q, wire::Query::Builder out);

// Reads a Query that came from the network. Checks everything parse_query
// guarantees (parser.hpp) and fails with errc::malformed_request, naming
// what is wrong, on anything else: a missing required struct, a union member
// or enumerant this node does not know, the wrong number of values, an empty
// data path, nesting beyond k_max_expr_depth, a limit out of range... A
// kj::Exception thrown while reading (a damaged message, a reader limit) is
// caught and reported the same way.
result<query> decode_query(wire::Query::Reader in);

// `q` as one flat Cap'n Proto message (capnp::messageToFlatArray: segment
// table, then segments).
// Requires: as encode_query.
std::string encode_query_bytes(const query& q);

// The inverse of encode_query_bytes. `bytes` need not be aligned (it is
// copied into a word buffer first). malformed_request for bytes that are no
// such message (including a length that is not a multiple of 8) and for
// everything decode_query refuses.
result<query> decode_query_bytes(std::string_view bytes);

}  // namespace annal::engine::query
