#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "engine/types.hpp"

namespace annal::engine {

// Every failure Annal reports, from the engine up to the client. Stable: the
// names (errc_name) are the `code` of wire and HTTP errors.
enum class errc {
  ok = 0,
  // Append and read semantics.
  wrong_expected_version = 1,  // error::current_version says what the stream is at
  stream_not_found,            // the stream never existed or is soft-deleted
  stream_deleted,              // the stream is tombstoned: never writable again
  idempotency_conflict,        // some event ids of the batch were written, others differ
  // Bad input.
  invalid_stream_id,
  invalid_event,
  batch_too_large,
  invalid_argument,
  // Storage.
  checksum_mismatch,  // a record's CRC32C does not match: corruption
  lsn_gap,            // records are not contiguous: corruption
  corruption,         // any other structural damage (bad header, undecodable payload)
  io_error,           // a write, sync or read failed; writes stay refused (sticky)
  partition_unavailable,  // the partition failed to open; see the open error
  // Service: reported by the server and the client, never by the engine.
  malformed_request,     // a frame or body that does not decode, or a missing field
  unknown_request,       // a message type this node does not know
  unsupported_version,   // the protocol handshake named a version we do not speak
  frame_too_large,       // a frame or body over the configured limit
  too_many_connections,  // the connection limit is reached
  overloaded,            // too many requests in flight on one connection
  timeout,               // no reply in time (client side), or idle connection closed
  connection_lost,       // the connection closed with the request in flight
  shutting_down,         // the node is stopping and takes no new requests
  not_found,             // no such route or resource (HTTP)
  // Cluster.
  not_owner,             // this node does not own the partition at the sender's epoch
  node_unavailable,      // the node owning the partition cannot be reached
  conflict,              // a compare-and-swap lost: someone else changed it first
  metadata_unavailable,  // the metadata store (etcd) cannot be reached
  // Replication.
  full_copy_needed,  // shipping from an lsn the source no longer holds (retention
                     // removed it): the copy must start from whole segments
  // Queries.
  query_syntax,         // query text that does not parse (the message names the position)
  query_too_large,      // a query would scan more events than the node's limit
  query_timeout,        // a query ran longer than its time limit
  last_errc = query_timeout,
};

// The errc whose errc_name() is `name`; nullopt for a name we do not know.
std::optional<errc> errc_from_name(std::string_view name);

const std::error_category& engine_category();
std::error_code make_error_code(errc e);
const char* errc_name(errc e);

// A failure with a human-readable message. Messages about storage name the
// file and byte offset.
struct error {
  errc code = errc::ok;
  std::string message;
  // For wrong_expected_version: the stream's current version (nullopt: the
  // stream does not exist).
  std::optional<stream_version> current_version;

  error() = default;
  error(errc c, std::string m) : code(c), message(std::move(m)) {}
};

// A value or an error. Small and movable; the value path never allocates for
// the error side.
template <class T>
class result {
 public:
  result(T value) : state_(std::move(value)) {}
  result(error e) : state_(std::move(e)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Requires: ok().
  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // Requires: !ok().
  const error& err() const { return std::get<1>(state_); }
  error& err() { return std::get<1>(state_); }

 private:
  std::variant<T, error> state_;
};

// result<void>: success or an error.
struct status {
  status() = default;
  status(error e) : error_(std::move(e)) {}

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  // Requires: !ok().
  const error& err() const { return *error_; }

 private:
  std::optional<error> error_;
};

// Formats an I/O failure as "<what> <path>: <strerror>" with errc::io_error.
error io_failure(std::string_view what, const std::string& path, std::error_code ec);

}  // namespace annal::engine

template <>
struct std::is_error_code_enum<annal::engine::errc> : std::true_type {};
