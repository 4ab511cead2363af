#pragma once

// The query request and reply on the binary protocol (schema/protocol.capnp
// QueryRequest / QueryReply; docs/protocol.md "Queries").

#include <string>
#include <string_view>

#include "actors/requests.hpp"
#include "engine/query/result_table.hpp"
#include "schema/protocol.capnp.h"

namespace annal::net {

// A query request as a node received it.
struct received_query {
  actors::query_request request;  // relative time bounds resolved
  bool want_partial = false;      // node to node: answer with the partial result
};

// The parsed query of `text` with its relative time bounds resolved against
// `now`: errc::query_syntax for text that does not parse.
engine::result<engine::query::query> prepare_query(std::string_view text, timestamp_us now);

// Decodes a QueryRequest: the text (parsed and resolved against `now`) or
// else the parsed form. errc::query_syntax for bad text, malformed_request for
// a bad parsed form.
engine::result<received_query> decode_query_request(wire::QueryRequest::Reader in,
                                                    timestamp_us now);
// A client's request: the text.
void encode_query_text(wire::QueryRequest::Builder out, std::string_view text, bool allow_partial,
                       std::uint32_t timeout_ms);
// A node's fan-out: the parsed form, asking for the partial result.
void encode_query_fan_out(wire::QueryRequest::Builder out, const actors::query_request& request);

}  // namespace annal::net
