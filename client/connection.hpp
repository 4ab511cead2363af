#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include "actors/requests.hpp"
#include "client/options.hpp"
#include "engine/errors.hpp"
#include "engine/shipped_batch.hpp"
#include "net/framing.hpp"
#include "net/wire_codec.hpp"
#include "schema/protocol.capnp.h"

namespace annal::client {

template <class T>
using callback = std::function<void(engine::result<T>)>;

// A subscription's start as the node reported it.
struct subscription_started {
  std::uint64_t id = 0;  // the subscription (its subscribe request's id)
  std::vector<actors::all_position> position;  // where it starts
};

// What a subscription on a connection calls, on the connection's strand.
struct subscription_handlers {
  // Once: subscribed, or the error (then nothing else is called).
  std::function<void(engine::result<subscription_started>)> subscribed;
  // Each pushed batch: events and `next` (`from` is empty); the event views
  // stay valid as long as the batch's buffers.
  std::function<void(actors::subscription_batch)> events;
  // Once, after subscribed(ok): nullopt after unsubscribe(), else why it
  // ended (the node's error, or connection_lost).
  std::function<void(std::optional<engine::error>)> ended;
};

// One TCP connection to a node, speaking the binary protocol. Requests are
// pipelined: any number may be in flight; replies are matched by request id
// and may complete in any order.
//
// Thread-safe: any thread may submit requests or close(). Every callback is
// called exactly once, on a thread running the io_context, serialized with
// the connection's other callbacks (its strand); a callback may submit new
// requests. Errors: the node's errors come back with their errc (current
// version filled in for wrong_expected_version); errc::timeout when no reply
// came within request_timeout; errc::connection_lost for every request in
// flight when the connection closes; errc::frame_too_large (nothing sent) for
// a request over the node's frame limit.
//
// Lifetime: shared. Pending asio operations keep it alive until close() (or
// the node closing the connection); call close() when done. The io_context
// must outlive it.
class connection : public std::enable_shared_from_this<connection> {
  struct private_tag {};

 public:
  using connect_callback = std::function<void(engine::result<std::shared_ptr<connection>>)>;

  // Resolves, connects and does the handshake; `done` gets the open
  // connection, or errc::timeout / connection_lost / unsupported_version / io_error.
  static void connect(asio::io_context& io, client_options options, connect_callback done);

  connection(private_tag, asio::io_context& io, client_options options);

  // Valid once connect() has handed the connection out.
  const server_info& server() const { return server_; }

  void append(actors::append_request request, callback<actors::append_reply> done);
  void read(actors::read_request request, callback<engine::read_page> done);
  void read_last(std::string stream, callback<engine::read_page> done);
  void get_stream_info(std::string stream, callback<engine::stream_info> done);
  void set_metadata(std::string stream, engine::stream_metadata metadata,
                    callback<actors::write_reply> done);
  void delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                     callback<actors::write_reply> done);
  void put_snapshot(std::string stream, stream_version version, std::string payload,
                    callback<actors::write_reply> done);
  // nullopt: the stream has no snapshot.
  void get_snapshot(std::string stream, callback<std::optional<engine::snapshot_read>> done);
  void read_all(actors::read_all_request request, callback<actors::read_all_page> done);
  void stats(callback<std::vector<actors::partition_stats>> done);
  // A query by its text (docs/queries.md), answered finished.
  void query(std::string text, bool allow_partial, std::uint32_t timeout_ms,
             callback<engine::query::query_answer> done);
  // A node's fan-out of a parsed query, answered with the partial result.
  void query_partial(actors::query_request request, callback<engine::query::partial_result> done);
  void ping(std::function<void(engine::status)> done);

  // Subscriptions (docs/subscriptions.md). The node pushes at most as many
  // events as granted: params.credits with the request, then grant_credits().
  void subscribe(net::wire_codec::subscribe_params params, subscription_handlers handlers);
  // One-way requests; a subscription that ended meanwhile ignores them.
  void grant_credits(std::uint64_t subscription, std::uint32_t credits);
  void unsubscribe(std::uint64_t subscription);
  // Partition handoff (node to node; actors/partition_transfer.hpp).
  void ship_log(partition_id p, lsn from, std::size_t max_bytes,
                callback<engine::shipped_batch> done);
  void seal_partition(partition_id p, std::chrono::milliseconds hold_for, callback<lsn> done);
  void unseal_partition(partition_id p, callback<lsn> done);

  // Marks the requests submitted from now on as forwarded by a node at this
  // cluster-map epoch (node-to-node links only; 0, the default: a client).
  void set_forwarded_epoch(std::uint64_t epoch) {
    forwarded_epoch_.store(epoch, std::memory_order_relaxed);
  }

  // Closes the socket; requests in flight fail with connection_lost. Idempotent.
  void close();

  // Whether the connection is still open (a hint: it may close any time).
  bool is_open() const { return open_.load(std::memory_order_relaxed); }

 private:
  // A reply (response != nullptr, payload = its frame) or a local failure.
  struct reply_event {
    const engine::error* error = nullptr;
    wire::Response::Reader* response = nullptr;
    std::span<const std::byte> payload;
  };
  static reply_event error_event(const engine::error* error) {
    reply_event event;
    event.error = error;
    return event;
  }
  using reply_handler = std::function<void(const reply_event&)>;
  using fill_fn = std::function<void(wire::Request::Builder)>;

  template <class T, class Decode>
  static reply_handler typed(callback<T> done, Decode decode);

  void submit(reply_handler handler, fill_fn fill);
  // A request without a reply (on strand_).
  void send_oneway(fill_fn fill);
  // A frame for an open subscription; false if `id` is none.
  bool handle_push(std::uint64_t id, wire::Response::Reader response,
                   std::span<const std::byte> payload);
  void start_request(reply_handler& handler, const fill_fn& fill);
  void start_connect(connect_callback done);
  void send_hello();
  void do_read();
  void on_read(std::error_code ec, std::size_t n);
  void handle_frame(std::span<const std::byte> payload);
  void flush();
  void arm_request_timer();
  void on_request_timer();
  void close_now(engine::error reason);

  client_options options_;
  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  asio::ip::tcp::socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  asio::steady_timer request_timer_;
  server_info server_;
  std::atomic<bool> open_{false};
  std::atomic<std::uint64_t> forwarded_epoch_{0};

  // Everything below is used on strand_ only.
  connect_callback connect_done_;  // set until the handshake ends
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, reply_handler> pending_;
  std::unordered_map<std::uint64_t, std::shared_ptr<subscription_handlers>> subscriptions_;
  std::deque<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> deadlines_;
  bool timer_armed_ = false;
  net::receive_buffer in_;
  std::size_t need_bytes_ = 0;
  net::aligned_scratch scratch_;
  // The copies subscription batches keep (handle_push).
  std::shared_ptr<net::word_buffer_pool> push_buffers_ = std::make_shared<net::word_buffer_pool>();
  std::vector<std::byte> out_;
  std::vector<std::byte> writing_;
  kj::Array<capnp::word> request_scratch_;
  bool reading_ = false;
  bool write_active_ = false;
  bool processing_ = false;
  bool closed_ = false;
  std::optional<engine::error> close_reason_;  // a connection-level error from the node
};

}  // namespace annal::client
