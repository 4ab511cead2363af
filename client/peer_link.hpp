#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "actors/peer.hpp"
#include "actors/requests.hpp"
#include "client/connection.hpp"
#include "client/options.hpp"

namespace annal::client {

struct peer_link_options {
  std::string node_id;  // the remote node, for messages and logs
  client_options connection;
  // Reconnect backoff: doubles from initial to max after each failed attempt.
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
  // Requests held while a connection attempt is under way; over it they fail
  // at once with node_unavailable.
  std::size_t max_queued = 10000;
};

// The link from this node to one remote node: the remote node's partitions
// seen as a request_handler. Requests are forwarded over one pipelined
// binary-protocol connection (the client protocol, docs/protocol.md), and the
// remote node's replies and typed errors come back unchanged.
//
// Connection: opened on the first request, reopened after a failure with
// exponential backoff. Errors of its own: errc::node_unavailable for a
// request that could not be sent (no connection, or a backoff under way:
// nothing was written, a retry is safe); errc::connection_lost for a request
// in flight when the connection dropped (its outcome is unknown);
// errc::timeout after connection.request_timeout.
//
// Thread-safe, like request_handler. Lifetime: create with make(); call
// close() before the io_context stops; requests after close() fail with
// errc::shutting_down.
class peer_link : public actors::peer, public std::enable_shared_from_this<peer_link> {
  struct private_tag {};

 public:
  static std::shared_ptr<peer_link> make(asio::io_context& io, peer_link_options options);
  peer_link(private_tag, asio::io_context& io, peer_link_options options);

  const std::string& node_id() const { return options_.node_id; }
  // The map epoch sent with every request from now on (see forwardedEpoch in
  // schema/protocol.capnp): a peer link only carries forwarded requests.
  void set_epoch(std::uint64_t epoch) override { epoch_.store(epoch, std::memory_order_relaxed); }
  void close() override;

  void append(actors::append_request request,
              actors::reply_fn<actors::append_reply> reply) override;
  void read(actors::read_request request, actors::reply_fn<engine::read_page> reply) override;
  void read_last(std::string stream, actors::reply_fn<engine::read_page> reply) override;
  void get_stream_info(std::string stream, actors::reply_fn<engine::stream_info> reply) override;
  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    actors::reply_fn<actors::write_reply> reply) override;
  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     actors::reply_fn<actors::write_reply> reply) override;
  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    actors::reply_fn<actors::write_reply> reply) override;
  void get_snapshot(std::string stream,
                    actors::reply_fn<std::optional<engine::snapshot_read>> reply) override;

  // partition_transfer: the remote node as a handoff's source.
  void ship_log(partition_id p, lsn from, std::size_t max_bytes,
                actors::reply_fn<engine::shipped_batch> reply) override;
  void seal(partition_id p, std::chrono::milliseconds hold_for,
            actors::reply_fn<lsn> reply) override;
  void unseal(partition_id p, actors::reply_fn<lsn> reply) override;
  void read_all(actors::read_all_request request,
                actors::reply_fn<actors::read_all_page> reply) override;
  void stats(actors::reply_fn<std::vector<actors::partition_stats>> reply) override;
  void query(actors::query_request request,
             actors::reply_fn<engine::query::partial_result> reply) override;

 private:
  // A request waiting for a connection: `send` forwards it, `fail` ends it.
  struct pending {
    std::function<void(connection&)> send;
    std::function<void(engine::error)> fail;
  };

  template <class T, class Send>
  void forward(actors::reply_fn<T> reply, Send send);
  void submit(pending request);                                              // on strand_
  void start_connect();                                                      // on strand_
  void on_connected(engine::result<std::shared_ptr<connection>> connected);  // on strand_
  engine::error unavailable(const std::string& why) const;

  peer_link_options options_;
  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::steady_timer backoff_timer_;

  // On strand_ only.
  std::shared_ptr<connection> connection_;
  bool connecting_ = false;
  bool backing_off_ = false;
  bool closed_ = false;
  std::chrono::milliseconds backoff_;
  std::string last_failure_;
  std::deque<pending> queued_;
  std::atomic<std::uint64_t> epoch_{1};
};

}  // namespace annal::client
