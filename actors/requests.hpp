#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/read_all.hpp"
#include "actors/stats.hpp"
#include "engine/errors.hpp"
#include "engine/partition.hpp"
#include "engine/query/ast.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/result_table.hpp"
#include "engine/types.hpp"

namespace annal::actors {

using engine::error;
using engine::errc;
using engine::result;

// The operations a node serves, as plain values. The binary protocol, the
// HTTP API and (later) peer links decode into these and encode the replies.

struct append_request {
  std::string stream;
  engine::expected_version expected;
  // Events with a nil (all-zero) id get a random version-4 UUID.
  std::vector<engine::event_input> events;
};

struct append_reply {
  stream_version first_version;
  stream_version last_version;
  lsn position;
  partition_id partition;
  bool duplicate = false;
};

struct read_request {
  std::string stream;
  stream_version from;
  bool from_end = false;  // backward from the last event, ignoring `from`
  std::size_t limit = 100;
  engine::read_direction direction = engine::read_direction::forward;
};

// Acknowledgement of a metadata change, delete or snapshot.
struct write_reply {
  lsn position;
  partition_id partition;
};

// Set once nobody waits for a query's answer any more (its client's
// connection closed): the node's scans for it stop at their next step and
// answer connection_lost. Thread-safe; null: never cancelled.
using query_cancel = std::shared_ptr<std::atomic<bool>>;

// A query (docs/queries.md) over the partitions a handler serves.
struct query_request {
  // Requires: no relative time bound (the receiving node resolves them, so
  // that every partition uses the same "now").
  engine::query::query query;
  // The partitions to scan (node to node); empty: every partition.
  std::vector<partition_id> partitions;
  // Stop at a limit with a result marked partial instead of an error.
  bool allow_partial = false;
  // 0: the node's limit (query_options::timeout); otherwise the smaller one.
  std::uint32_t timeout_ms = 0;
  // This node's scans only: the other nodes of a cluster query are not told.
  query_cancel cancel;
};

// A reply callback. Called exactly once, on an actor or sync thread: it must
// not block; network code posts the reply to its own executor.
template <class T>
using reply_fn = std::function<void(result<T>)>;

// The asynchronous request API of a node. Thread-safe: any thread may call
// it at any time; every call ends in exactly one reply_fn call, also when the
// node is stopping (errc::shutting_down).
class request_handler {
 public:
  virtual ~request_handler() = default;

  virtual void append(append_request request, reply_fn<append_reply> reply) = 0;
  // errc::stream_not_found if the stream never existed (or is soft-deleted
  // with nothing written since).
  virtual void read(read_request request, reply_fn<engine::read_page> reply) = 0;
  virtual void read_last(std::string stream, reply_fn<engine::read_page> reply) = 0;
  virtual void get_stream_info(std::string stream, reply_fn<engine::stream_info> reply) = 0;
  virtual void set_metadata(std::string stream, engine::stream_metadata metadata,
                            reply_fn<write_reply> reply) = 0;
  virtual void delete_stream(std::string stream, engine::expected_version expected,
                             bool tombstone, reply_fn<write_reply> reply) = 0;
  virtual void put_snapshot(std::string stream, stream_version version, std::string payload,
                            reply_fn<write_reply> reply) = 0;
  // nullopt: the stream has no snapshot.
  virtual void get_snapshot(std::string stream,
                            reply_fn<std::optional<engine::snapshot_read>> reply) = 0;
  // Events of all streams in timestamp order, merged across partitions
  // (actors/read_all.hpp). errc::invalid_argument for a bad limit, position
  // list or partition list.
  virtual void read_all(read_all_request request, reply_fn<read_all_page> reply) = 0;
  // One entry per partition served (a cluster: every partition, each from its
  // owner), sorted by partition.
  virtual void stats(reply_fn<std::vector<partition_stats>> reply) = 0;
  // The merged partial result of every requested partition; finish it with
  // engine::query::finish. errc::query_too_large / query_timeout at a limit
  // (unless allow_partial), invalid_argument for a bad partition list or an
  // unresolved relative time bound. The default (handlers that serve no
  // partitions, e.g. test stand-ins) answers errc::unknown_request.
  virtual void query(query_request request, reply_fn<engine::query::partial_result> reply) {
    reply(error{errc::unknown_request, "this handler does not serve queries"});
  }

  // The handler for requests another node forwarded here, sent at that
  // node's map epoch `sender_epoch`: it serves only the partitions this node
  // owns and answers errc::not_owner for the others, never forwarding again.
  // A single node owns every partition: the default is the handler itself.
  virtual request_handler& forwarded(std::uint64_t sender_epoch) { return *this; }
};

}  // namespace annal::actors
