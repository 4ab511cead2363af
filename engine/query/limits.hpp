#pragma once

#include <cstddef>
#include <cstdint>

// The limits of the query language (docs/queries.md). The parser
// (parser.hpp) refuses text beyond them and the decoder (query_codec.hpp)
// refuses wire messages beyond them, so every query (ast.hpp) the evaluator
// sees is within them.
namespace annal::engine::query {

// Longest query text parse_query accepts.
inline constexpr std::size_t k_max_query_bytes = 64 * 1024;

// Deepest nesting of an expression, counted two ways, both limited:
// - in the text: open parentheses plus `not`s around a point;
// - in the tree: and / or / not nodes on a path from the root to a leaf.
// Keeps the recursion of the parser, the decoder and the evaluator bounded.
inline constexpr int k_max_expr_depth = 64;

// `| first N` / `| last N`: 1..k_max_limit. No `|`: k_default_limit, oldest first.
inline constexpr std::uint32_t k_max_limit = 10000;
inline constexpr std::uint32_t k_default_limit = 100;

// `top K`: 1..k_max_top (0 in the tree means no `top`).
inline constexpr std::uint32_t k_max_top = 10000;

}  // namespace annal::engine::query
