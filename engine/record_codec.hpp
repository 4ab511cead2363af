#pragma once

// Encodes and decodes the Cap'n Proto payloads of log records
// (schema/log.capnp) inside their frames (engine/log_format.hpp).

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/errors.hpp"
#include "engine/log_format.hpp"
#include "engine/types.hpp"
#include "schema/log.capnp.h"

namespace annal::engine {

// Builds complete frames (header + payload). Keeps a zeroed scratch segment so
// that encoding a batch allocates nothing once warmed up.
// Not thread-safe: owned by one partition.
class record_encoder {
 public:
  // Each call replaces the frame returned by the previous one. The span stays
  // valid until the next call.
  std::span<const std::byte> append_batch(partition_id partition, lsn position,
                                          std::string_view stream, stream_version first,
                                          timestamp_us timestamp,
                                          std::span<const event_input> events);
  std::span<const std::byte> stream_metadata(partition_id partition, lsn position,
                                             std::string_view stream, timestamp_us timestamp,
                                             const engine::stream_metadata& metadata,
                                             bool deleted, bool tombstoned);
  std::span<const std::byte> snapshot(partition_id partition, lsn position,
                                      std::string_view stream, stream_version version,
                                      timestamp_us timestamp, std::string_view payload);

 private:
  // Gives a builder whose first segment is scratch_ sized for `estimate_bytes`.
  capnp::MallocMessageBuilder& start(std::size_t estimate_bytes);
  std::span<const std::byte> finish(log_format::record_type type, partition_id partition,
                                    lsn position);

  std::vector<capnp::word> scratch_;  // all zero between calls
  std::optional<capnp::MallocMessageBuilder> builder_;
  std::vector<std::byte> frame_;
};

// One event inside a decoded append batch. The views point into the frame's
// bytes and live as long as they do.
struct event_view {
  event_id id{};
  std::string_view type;
  std::string_view data;
  std::string_view metadata;
};

// Reads the payload of one frame in place.
// Requires: the payload is 8-byte aligned and outlives this reader.
// The constructor and accessors throw kj::Exception on an undecodable
// payload; run them inside guard_decode(). Not thread-safe.
class record_reader {
 public:
  explicit record_reader(std::span<const std::byte> payload);

  schema::AppendBatch::Reader append_batch() { return reader_.getRoot<schema::AppendBatch>(); }
  schema::StreamMetadata::Reader stream_metadata() {
    return reader_.getRoot<schema::StreamMetadata>();
  }
  schema::Snapshot::Reader snapshot() { return reader_.getRoot<schema::Snapshot>(); }

 private:
  capnp::FlatArrayMessageReader reader_;
};

// Runs `decode`; a kj::Exception thrown by Cap'n Proto (an undecodable
// payload that passed its checksum: a writer bug or a format mismatch)
// becomes errc::corruption naming `where`. `decode` may also throw an
// engine::error to stop early; it is returned unchanged.
status guard_decode(const std::function<void()>& decode, std::string_view where);

// An event as views into the payload bytes.
event_view to_event_view(schema::Event::Reader event);
// Just the id (no blob reads).
event_id id_of(schema::Event::Reader event);
std::string_view to_view(capnp::Text::Reader text);
std::string_view to_view(capnp::Data::Reader data);


}  // namespace annal::engine
