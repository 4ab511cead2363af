#pragma once

// The query request and answer of the HTTP API (POST /query,
// docs/http-api.md "Queries").

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/errors.hpp"
#include "engine/query/result_table.hpp"

namespace annal::net::json {

// The body of POST /query: {"query": TEXT, "allowPartial": bool?, "timeoutMs": N?}.
struct query_body {
  std::string text;
  bool allow_partial = false;
  std::uint32_t timeout_ms = 0;  // 0: the node's limit
};

// errc::malformed_request for a body that is not such an object.
engine::result<query_body> decode_query_body(std::string_view body);

// {"columns": [...], "rows": [[...]], ...} for an aggregation, or
// {"events": [...], ...} for a listing (events as GET /all gives them), both
// with "positions" (per partition the lsn the answer is consistent with),
// "eventsScanned" and "partial".
std::string encode_query_answer(const engine::query::query_answer& answer, bool force_base64);

}  // namespace annal::net::json
