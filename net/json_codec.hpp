#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "actors/requests.hpp"
#include "engine/errors.hpp"
#include "engine/partition.hpp"
#include "engine/types.hpp"

// The JSON mapping of the HTTP API (docs/http-api.md): request bodies to
// request values, replies and errors to JSON text. No HTTP and no sockets
// here; every function is pure and thread-safe.
//
// Encoding rules:
// - `data` / `metadata` given as JSON values are stored as their compact JSON
//   text; with "dataEncoding" / "metadataEncoding": "base64" the value is a
//   base64 string and its decoded bytes are stored. Absent: empty bytes.
// - On the way out, stored bytes that are valid JSON are embedded verbatim;
//   other bytes (or all bytes, when base64 output is forced) are a base64
//   string with "dataEncoding" / "metadataEncoding": "base64". Empty bytes
//   are returned as null.
// - Event ids are UUID strings (8-4-4-4-12 lowercase hex, bytes in order).
namespace annal::net::json {

// Canonical lowercase UUID text of a 16-byte id.
std::string format_uuid(const event_id& id);
// Parses 8-4-4-4-12 hex (either case). nullopt for anything else.
std::optional<event_id> parse_uuid(std::string_view text);

// Standard base64 (RFC 4648, with padding).
std::string base64_encode(std::string_view bytes);
// Accepts standard base64 with or without padding. nullopt on bad input.
std::optional<std::string> base64_decode(std::string_view text);

// Whether `bytes` is one complete JSON value (what can be embedded verbatim).
bool is_json(std::string_view bytes);

// A JSON string literal (quotes included) of `text`; invalid UTF-8 is
// replaced by U+FFFD.
std::string quote(std::string_view text);

// The expected-version text of a query parameter: any | no_stream |
// stream_exists | N.
engine::result<engine::expected_version> parse_expected_version(std::string_view text);

// POST /streams/{stream} body. Events without an id keep the nil id (the
// node gives them a random version-4 UUID).
// errc::malformed_request for invalid JSON, wrong types or missing fields,
// batch_too_large for more than `max_batch_events` events, invalid_event for
// a bad id or encoding.
engine::result<actors::append_request> decode_append(std::string stream, std::string_view body,
                                                     std::size_t max_batch_events);
std::string encode_append_reply(const actors::append_reply& reply);

// One recorded event as a JSON object.
std::string encode_event(const engine::recorded_event& event, bool force_base64);
// {"events": [...], "next": V|null, "lastVersion": V|null}
std::string encode_read_page(const engine::read_page& page, bool force_base64);

// PUT /streams/{stream}/metadata body: maxCount, maxAge (seconds),
// truncateBefore; each optional non-negative integer (absent or null: 0).
engine::result<engine::stream_metadata> decode_metadata(std::string_view body);
std::string encode_stream_info(const engine::stream_info& info);

struct snapshot_body {
  stream_version version;
  std::string payload;
};
// PUT /streams/{stream}/snapshot body: {"version": N, "data": ..., "dataEncoding"?}.
engine::result<snapshot_body> decode_snapshot(std::string_view body);
std::string encode_snapshot(const engine::snapshot_read& snapshot, bool force_base64);

std::string encode_write_reply(const actors::write_reply& reply);

// GET /all: {"events": [{"stream", "partition", "position", "id", "type",
// "version", "timestamp", "data", "metadata"}], "next": token, "atEnd": bool}.
// `position` is the lsn of the event's record.
std::string encode_all_page(const actors::read_all_page& page, std::string_view next_token,
                            bool force_base64);
// One event of a GET /all page, as that page has it (also the `data` of a
// server-sent event of GET /subscribe).
std::string encode_all_event(const actors::all_event& event, bool force_base64);
// GET /stats: {"partitions": [{"partition", "node", "streams", "events",
// "endLsn"}], "nodes": [{"node", "partitions", "streams", "events",
// "bytes"}], "streams", "events"} (nodes by id; bytes = sum of endLsn).
std::string encode_stats(const std::vector<actors::partition_stats>& stats);

// {"error": {"code": errc_name, "message": ..., details}}; wrong_expected_version
// carries "currentVersion" (null when the stream does not exist).
std::string encode_error(const engine::error& error);

}  // namespace annal::net::json
