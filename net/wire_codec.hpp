#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "actors/requests.hpp"
#include "actors/subscription.hpp"
#include "engine/shipped_batch.hpp"
#include "engine/errors.hpp"
#include "engine/partition.hpp"
#include "schema/protocol.capnp.h"

// Conversions between the wire messages (schema/protocol.capnp) and the plain
// request/reply types of actors/requests.hpp. Used by the binary server
// (decode requests, encode replies) and the client (the other way round).
// Pure functions: thread-safe. Decoders may throw kj::Exception on a
// structurally damaged message; callers catch it (malformed_request).
namespace annal::net::wire_codec {

// --- Requests (server decodes, client encodes) ---

// The stream id, validated (engine::valid_stream_id): invalid_stream_id.
engine::result<std::string> decode_stream(capnp::Text::Reader stream);
// malformed_request for a union member this node does not know.
engine::result<engine::expected_version> decode_expected(wire::ExpectedVersion::Reader expected);
// batch_too_large over `max_batch_events` (checked before any event is copied).
engine::result<actors::append_request> decode_append(wire::AppendRequest::Reader request,
                                                     std::size_t max_batch_events);
engine::result<actors::read_request> decode_read(wire::ReadRequest::Reader request);
engine::stream_metadata decode_metadata(wire::StreamMetadata::Reader metadata);

void encode_expected(wire::ExpectedVersion::Builder out, const engine::expected_version& expected);
void encode_append(wire::AppendRequest::Builder out, const actors::append_request& request);
void encode_read(wire::ReadRequest::Builder out, const actors::read_request& request);
void encode_metadata(wire::StreamMetadata::Builder out, const engine::stream_metadata& metadata);

// --- Replies (server encodes, client decodes) ---

void encode_error(wire::Error::Builder out, const engine::error& error);
void encode_append_reply(wire::AppendReply::Builder out, const actors::append_reply& reply);
// Encodes as many events as fit in about `max_bytes` (at least one); when
// events are left out, `next` points at the first of them.
void encode_read_page(wire::ReadReply::Builder out, const engine::read_page& page,
                      std::size_t max_bytes);
void encode_stream_info(wire::StreamInfo::Builder out, const engine::stream_info& info);
void encode_write_reply(wire::WriteReply::Builder out, const actors::write_reply& reply);
void encode_snapshot(wire::SnapshotReply::Builder out,
                     const std::optional<engine::snapshot_read>& snapshot);

// The errc named by `code`. A code this build does not know (a newer node)
// becomes errc::invalid_argument with the message "<code>: <message>".
engine::error decode_error(wire::Error::Reader error);
actors::append_reply decode_append_reply(wire::AppendReply::Reader reply);
// The events' views point into the message: `keep_alive` (what owns it) goes
// into read_page::buffers.
engine::read_page decode_read_page(wire::ReadReply::Reader reply,
                                   std::shared_ptr<const void> keep_alive);
engine::stream_info decode_stream_info(wire::StreamInfo::Reader info);
actors::write_reply decode_write_reply(wire::WriteReply::Reader reply);
std::optional<engine::snapshot_read> decode_snapshot(wire::SnapshotReply::Reader reply,
                                                     std::shared_ptr<const void> keep_alive);

// --- Read-all and stats (both directions) ---

// The lists as sent; check_read_all (actors/read_all.hpp) judges them.
actors::read_all_request decode_read_all(wire::ReadAllRequest::Reader request);
void encode_read_all(wire::ReadAllRequest::Builder out, const actors::read_all_request& request);
// Every event of the page (the page's byte budget keeps it inside a frame).
void encode_read_all_page(wire::ReadAllReply::Builder out, const actors::read_all_page& page);
// The views point into the message: `keep_alive` goes into buffers.
actors::read_all_page decode_read_all_page(wire::ReadAllReply::Reader reply,
                                           std::shared_ptr<const void> keep_alive);
void encode_stats(wire::StatsReply::Builder out, const std::vector<actors::partition_stats>& stats);
std::vector<actors::partition_stats> decode_stats(wire::StatsReply::Reader reply);

// --- Subscriptions (docs/subscriptions.md) ---

struct subscribe_params {
  actors::subscription_target target;
  actors::subscription_start from;
  std::string filter;  // a `where` filter; empty: none
  std::uint32_t credits = 0;
};
// invalid_stream_id / invalid_argument for a bad target, a version start of
// a target that is not one stream; malformed_request for unknown union members.
engine::result<subscribe_params> decode_subscribe(wire::SubscribeRequest::Reader request);
void encode_subscribe(wire::SubscribeRequest::Builder out, const subscribe_params& params);
void encode_subscribed(wire::SubscribedReply::Builder out,
                       const std::vector<actors::all_position>& start);
std::vector<actors::all_position> decode_subscribed(wire::SubscribedReply::Reader reply);
// Every event of the batch (its page budget keeps it inside a frame).
void encode_subscription_events(wire::SubscriptionEvents::Builder out,
                                const actors::subscription_batch& batch);
// Events and `next`; `from` stays empty. The views point into the message:
// `keep_alive` goes into buffers.
actors::subscription_batch decode_subscription_events(wire::SubscriptionEvents::Reader events,
                                                      std::shared_ptr<const void> keep_alive);

// --- Partition handoff (node to node) ---
void encode_shipped_batch(wire::ShipLogReply::Builder out, const engine::shipped_batch& batch);
// Copies the bytes: the batch outlives the message.
engine::shipped_batch decode_shipped_batch(wire::ShipLogReply::Reader reply);

// --- Event ids: bytes 0..7 little-endian in id0, 8..15 in id1 ---
void split_event_id(const event_id& id, std::uint64_t& id0, std::uint64_t& id1);
event_id join_event_id(std::uint64_t id0, std::uint64_t id1);

}  // namespace annal::net::wire_codec
