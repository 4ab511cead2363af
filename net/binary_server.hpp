#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "actors/metrics.hpp"
#include "actors/partition_transfer.hpp"
#include "actors/requests.hpp"
#include "actors/subscription.hpp"
#include "engine/errors.hpp"
#include "net/framing.hpp"

namespace annal::net {

struct binary_server_options {
  std::string node_id = "dev";
  std::uint32_t partition_count = 64;  // reported in HelloReply
  std::uint32_t max_frame_bytes = k_default_max_frame_bytes;  // both directions
  // Per append; also the most events one read returns (a larger limit is cut,
  // and the reply's `next` says where to go on).
  std::uint32_t max_batch_events = 10000;
  std::size_t max_connections = 1024;
  // While this many requests of one connection wait for their reply, the
  // server stops reading from that socket (back-pressure, not an error).
  std::size_t max_inflight_per_connection = 1024;
  // A connection with no request in flight that sent no frame for this long
  // gets Error{timeout} and is closed.
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // After an error that ends a connection, how long unread input is drained
  // before the socket is closed (so the peer reads the error instead of a reset).
  std::chrono::milliseconds linger{2000};
  // Subscriptions open at once on one connection; more: overloaded.
  std::size_t max_subscriptions_per_connection = 64;
  // Long-poll readAll requests (waitMs > 0) waiting at once on one
  // connection (a peer link carries one per subscription of the other node);
  // they do not count against max_inflight_per_connection. More: overloaded.
  std::size_t max_waiting_per_connection = 65536;
  // Page size, long-poll and retries of subscriptions (page_bytes is cut to
  // fit a frame).
  actors::subscription_options subscription;
  // Serves the handoff requests of other nodes (shipLog, sealPartition,
  // unsealPartition); nullptr: they fail with unknown_request. Must outlive
  // the server.
  actors::partition_transfer* transfer = nullptr;
};

// The binary protocol server (docs/protocol.md): accepts TCP connections,
// decodes framed Cap'n Proto requests, calls the request_handler and writes
// the replies, pipelined and in completion order.
//
// Runs on the caller's io_context, which may be run by any number of threads
// (each connection is serialized on its own strand). The handler and the
// metrics must outlive every connection: stop the server, then let the
// io_context finish, then destroy the handler. Counts connections and the
// protocol errors it answers itself into `metrics` (the handler counts its own).
//
// Thread-safe: listen() and stop() may be called from any thread.
class binary_server {
 public:
  binary_server(asio::io_context& io, actors::request_handler& handler,
                actors::node_metrics& metrics, binary_server_options options);
  ~binary_server();  // stop()

  binary_server(const binary_server&) = delete;
  binary_server& operator=(const binary_server&) = delete;

  // Binds and starts accepting. Port 0 picks a free port. Returns the bound
  // endpoint; errc::io_error if the address cannot be bound, errc::shutting_down
  // after stop(). Requires: called at most once.
  engine::result<asio::ip::tcp::endpoint> listen(const std::string& host, std::uint16_t port);

  // Stops accepting and closes every connection (requests in flight get no
  // reply). Idempotent. Call before the io_context stops running.
  void stop();

  // Connections currently open (accepted and not yet closed).
  std::size_t connection_count() const;

  struct core;

 private:
  std::shared_ptr<core> core_;
};

}  // namespace annal::net
