#include "net/binary_server.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "actors/subscription_filter.hpp"
#include "engine/clock.hpp"
#include "engine/query/partial_result_codec.hpp"
#include "engine/query/plan.hpp"
#include "net/completion_inbox.hpp"
#include "net/query_wire.hpp"
#include "net/wire_codec.hpp"

namespace annal::net {

using asio::ip::tcp;
using engine::errc;
using steady = std::chrono::steady_clock;

namespace {

// Room received at once when no larger frame is pending.
constexpr std::size_t k_min_read_bytes = 64u << 10;
// Replies waiting to be written beyond which reading pauses (plus one frame).
constexpr std::size_t k_max_pending_output_bytes = 4u << 20;
// First segment of every reply builder, reused (zeroed again by the builder).
constexpr std::size_t k_reply_scratch_words = 1024;
// Slack left in a frame for the reply's fixed fields.
constexpr std::size_t k_frame_slack_bytes = 4096;

class connection;

}  // namespace

struct binary_server::core : std::enable_shared_from_this<binary_server::core> {
  core(asio::io_context& io_, actors::request_handler& handler_, actors::node_metrics& metrics_,
       binary_server_options options_)
      : io(io_),
        handler(handler_),
        metrics(metrics_),
        options(std::move(options_)),
        accept_strand(asio::make_strand(io_)),
        acceptor(accept_strand),
        accept_backoff(accept_strand) {}

  void accept();
  void on_accept(asio::error_code ec, tcp::socket socket);
  void remove(connection* c, bool counted);

  asio::io_context& io;
  actors::request_handler& handler;
  actors::node_metrics& metrics;
  const binary_server_options options;
  asio::strand<asio::io_context::executor_type> accept_strand;
  tcp::acceptor acceptor;  // used on accept_strand only (after listen())
  // A failed accept (e.g. EMFILE: out of file descriptors) is retried after
  // a pause instead of at once, which would spin.
  asio::steady_timer accept_backoff;
  std::atomic<std::size_t> open{0};  // counted (accepted) connections

  mutable std::mutex mu;
  bool stopped = false;  // guarded by mu
  std::unordered_map<connection*, std::shared_ptr<connection>> connections;  // guarded by mu
};

namespace {

// One client connection. Owned by the server's registry while open; asio
// handlers and reply callbacks hold it alive until they have run. Everything
// but the reply callbacks runs on `strand_`.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(std::shared_ptr<binary_server::core> core, tcp::socket socket, bool counted)
      : core_(std::move(core)),
        strand_(asio::make_strand(core_->io)),
        socket_(std::move(socket)),
        timer_(strand_),
        counted_(counted),
        reply_scratch_(kj::heapArray<capnp::word>(k_reply_scratch_words)) {
    std::memset(reply_scratch_.begin(), 0, reply_scratch_.size() * sizeof(capnp::word));
  }

  // Requires: on strand_ (posted by the acceptor).
  void start() {
    last_frame_ = steady::now();
    if (!counted_) {
      fail(0, errc::too_many_connections,
           fmt::format("the node takes at most {} connections", core_->options.max_connections));
      return;
    }
    arm_idle_timer(core_->options.idle_timeout);
    do_read();
  }

  const asio::strand<asio::io_context::executor_type>& strand() const { return strand_; }

  void close_from_outside() {
    asio::post(strand_, [self = shared_from_this()] { self->close_now(); });
  }

 private:
  // An open subscription. `generation` tells it from earlier ones with the
  // same id. `unwritten` counts its pages encoded and not yet written;
  // `ack_due` says whether the acknowledgement of its newest page waits for
  // an older one to be written (on_subscription_events).
  struct subscription_entry {
    std::shared_ptr<actors::subscription> sub;
    std::uint64_t generation = 0;
    std::size_t unwritten = 0;
    bool ack_due = false;
  };

  bool paused() const {
    return inflight_ >= core_->options.max_inflight_per_connection ||
           out_.size() + writing_.size() > k_max_pending_output_bytes;
  }

  void do_read() {
    if (reading_ || closed_ || read_closed_) return;
    if (!closing_ && paused()) return;
    const std::size_t want = std::max(k_min_read_bytes, need_bytes_);
    auto space = in_.prepare(want);
    reading_ = true;
    socket_.async_read_some(
        asio::buffer(space.data(), space.size()),
        asio::bind_executor(strand_, [self = shared_from_this()](asio::error_code ec,
                                                                 std::size_t n) {
          self->on_read(ec, n);
        }));
  }

  void on_read(asio::error_code ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
      read_closed_ = true;
      if (closing_) return maybe_finish();
      if (in_.size() > 0) {
        // The peer ended mid-frame; it may still read (half-close).
        fail(0, errc::malformed_request,
             fmt::format("connection ended inside a frame ({} bytes of it received)", in_.size()));
        return;
      }
      if (ec != asio::error::eof) spdlog::debug("binary connection: read failed: {}", ec.message());
      closing_ = true;  // answer what is in flight, then close
      cancel_subscriptions();
      cancel_queries();
      return maybe_finish();
    }
    if (closing_) {  // draining unread input after an error
      in_.commit(n);
      in_.consume(in_.size());
      return do_read();
    }
    in_.commit(n);
    last_frame_ = steady::now();
    process_frames();
  }

  // Handles every complete frame in the buffer, then reads on unless paused.
  void process_frames() {
    if (processing_ || closed_) return;
    processing_ = true;
    while (!closing_ && !paused()) {
      frame_view frame;
      const auto status = next_frame(in_.data(), core_->options.max_frame_bytes, frame);
      if (status == frame_status::need_more) {
        const auto data = in_.data();
        if (data.size() >= k_frame_header_bytes) {
          const std::size_t length = static_cast<std::size_t>(data[0]) |
                                     (static_cast<std::size_t>(data[1]) << 8) |
                                     (static_cast<std::size_t>(data[2]) << 16) |
                                     (static_cast<std::size_t>(data[3]) << 24);
          need_bytes_ = k_frame_header_bytes + length - data.size();
        }
        break;
      }
      need_bytes_ = 0;
      if (status == frame_status::too_large) {
        fail(0, errc::frame_too_large,
             fmt::format("a frame is over the limit of {} bytes", core_->options.max_frame_bytes));
        break;
      }
      if (status == frame_status::malformed) {
        fail(0, errc::malformed_request, "the frame is not a Cap'n Proto message");
        break;
      }
      handle_frame(frame.payload);
      in_.consume(frame.consumed);
    }
    processing_ = false;
    flush();
    if (closing_) return maybe_finish();
    do_read();
  }

  void handle_frame(std::span<const std::byte> payload) {
    std::uint64_t id = 0;
    try {
      capnp::FlatArrayMessageReader message(scratch_.copy(payload), reader_options());
      auto request = message.getRoot<wire::Request>();
      id = request.getId();
      handle_request(id, request);
    } catch (const kj::Exception& e) {
      fail(id, errc::malformed_request,
           fmt::format("undecodable request: {}", e.getDescription().cStr()));
    } catch (const std::exception& e) {
      fail(id, errc::malformed_request, fmt::format("undecodable request: {}", e.what()));
    }
  }

  void handle_request(std::uint64_t id, wire::Request::Reader request) {
    const auto which = request.which();
    if (!hello_done_) {
      if (which != wire::Request::HELLO) {
        return fail(id, errc::malformed_request, "the first request must be hello");
      }
      const auto version = request.getHello().getProtocolVersion();
      if (version != wire::PROTOCOL_VERSION) {
        return fail(id, errc::unsupported_version,
                    fmt::format("protocol version {} is not supported; this node speaks {}",
                                version, wire::PROTOCOL_VERSION));
      }
      hello_done_ = true;
      return respond(id, [&](wire::Response::Builder out) {
        auto hello = out.initHello();
        hello.setProtocolVersion(wire::PROTOCOL_VERSION);
        hello.setNodeId(core_->options.node_id);
        hello.setPartitionCount(core_->options.partition_count);
        hello.setMaxFrameBytes(core_->options.max_frame_bytes);
        hello.setMaxBatchEvents(core_->options.max_batch_events);
      });
    }
    const auto forwarded_epoch = request.getForwardedEpoch();
    auto& handler =
        forwarded_epoch == 0 ? core_->handler : core_->handler.forwarded(forwarded_epoch);
    switch (which) {
      case wire::Request::HELLO:
        return error_reply(id, {errc::malformed_request, "hello was already received"});
      case wire::Request::APPEND: {
        auto decoded =
            wire_codec::decode_append(request.getAppend(), core_->options.max_batch_events);
        if (!decoded) return error_reply(id, decoded.err());
        ++inflight_;
        return handler.append(std::move(decoded).value(),
                              make_reply<actors::append_reply>(id, [](auto out, const auto& r) {
                                wire_codec::encode_append_reply(out.initAppend(), r);
                              }));
      }
      case wire::Request::READ: {
        auto decoded = wire_codec::decode_read(request.getRead());
        if (!decoded) return error_reply(id, decoded.err());
        decoded->limit = std::min<std::size_t>(decoded->limit, core_->options.max_batch_events);
        ++inflight_;
        return handler.read(std::move(decoded).value(), read_reply(id));
      }
      case wire::Request::READ_LAST: {
        auto stream = wire_codec::decode_stream(request.getReadLast().getStream());
        if (!stream) return error_reply(id, stream.err());
        ++inflight_;
        return handler.read_last(std::move(stream).value(), read_reply(id));
      }
      case wire::Request::GET_METADATA: {
        auto stream = wire_codec::decode_stream(request.getGetMetadata().getStream());
        if (!stream) return error_reply(id, stream.err());
        ++inflight_;
        return handler.get_stream_info(
            std::move(stream).value(),
            make_reply<engine::stream_info>(id, [](auto out, const auto& r) {
              wire_codec::encode_stream_info(out.initStreamInfo(), r);
            }));
      }
      case wire::Request::SET_METADATA: {
        auto in = request.getSetMetadata();
        auto stream = wire_codec::decode_stream(in.getStream());
        if (!stream) return error_reply(id, stream.err());
        ++inflight_;
        return handler.set_metadata(std::move(stream).value(),
                                    wire_codec::decode_metadata(in.getMetadata()), write_reply(id));
      }
      case wire::Request::DELETE_STREAM: {
        auto in = request.getDeleteStream();
        auto stream = wire_codec::decode_stream(in.getStream());
        if (!stream) return error_reply(id, stream.err());
        auto expected = wire_codec::decode_expected(in.getExpected());
        if (!expected) return error_reply(id, expected.err());
        ++inflight_;
        return handler.delete_stream(std::move(stream).value(), *expected, in.getTombstone(),
                                     write_reply(id));
      }
      case wire::Request::PUT_SNAPSHOT: {
        auto in = request.getPutSnapshot();
        auto stream = wire_codec::decode_stream(in.getStream());
        if (!stream) return error_reply(id, stream.err());
        auto payload = in.getPayload();
        ++inflight_;
        return handler.put_snapshot(
            std::move(stream).value(), stream_version{in.getVersion()},
            std::string(reinterpret_cast<const char*>(payload.begin()), payload.size()),
            write_reply(id));
      }
      case wire::Request::GET_SNAPSHOT: {
        auto stream = wire_codec::decode_stream(request.getGetSnapshot().getStream());
        if (!stream) return error_reply(id, stream.err());
        ++inflight_;
        return handler.get_snapshot(
            std::move(stream).value(),
            make_reply<std::optional<engine::snapshot_read>>(id, [](auto out, const auto& r) {
              wire_codec::encode_snapshot(out.initSnapshot(), r);
            }));
      }
      case wire::Request::PING:
        return respond(id, [](wire::Response::Builder out) { out.setPong(); });
      case wire::Request::READ_ALL: {
        auto decoded = wire_codec::decode_read_all(request.getReadAll());
        decoded.limit = std::min<std::size_t>(decoded.limit, core_->options.max_batch_events);
        decoded.max_bytes = read_all_budget();
        auto encode = [](auto out, const auto& r) {
          wire_codec::encode_read_all_page(out.initReadAll(), r);
        };
        if (decoded.wait_ms > 0) {
          // A long-poll: parked, not work; it does not hold reading back.
          if (waiting_ >= core_->options.max_waiting_per_connection) {
            return error_reply(id, {errc::overloaded,
                                    fmt::format("{} long-poll reads wait on this connection",
                                                waiting_)});
          }
          ++waiting_;
          return handler.read_all(std::move(decoded),
                                  make_waiting_reply<actors::read_all_page>(id, encode));
        }
        ++inflight_;
        return handler.read_all(std::move(decoded),
                                make_reply<actors::read_all_page>(id, encode));
      }
      case wire::Request::STATS:
        ++inflight_;
        return handler.stats(make_reply<std::vector<actors::partition_stats>>(
            id, [](auto out, const auto& r) { wire_codec::encode_stats(out.initStats(), r); }));
      case wire::Request::SHIP_LOG:
      case wire::Request::SEAL_PARTITION:
      case wire::Request::UNSEAL_PARTITION:
        return handle_transfer(id, request);
      case wire::Request::QUERY:
        return handle_query(id, request.getQuery(), handler);
      case wire::Request::SUBSCRIBE:
        return subscribe(id, request.getSubscribe());
      case wire::Request::GRANT_CREDITS: {
        auto grant = request.getGrantCredits();
        // One-way; a subscription that just ended is no error.
        if (auto it = subscriptions_.find(grant.getSubscription()); it != subscriptions_.end()) {
          it->second.sub->grant(grant.getCredits());
        }
        return;
      }
      case wire::Request::UNSUBSCRIBE:
        return unsubscribe(request.getUnsubscribe().getSubscription());
    }
    error_reply(id, {errc::unknown_request,
                     fmt::format("unknown request type {}", static_cast<unsigned>(which))});
  }

  // --- Subscriptions (docs/subscriptions.md) ---
  // The subscription's callbacks reach the strand through inbox_, as replies
  // do (never inline: they may come from inside subscription::start or
  // ack()). A batch is acknowledged once its frame is written to the socket,
  // so a subscription holds at most one page, in the subscription or in out_.

  void subscribe(std::uint64_t id, wire::SubscribeRequest::Reader in) {
    auto decoded = wire_codec::decode_subscribe(in);
    if (!decoded) return error_reply(id, decoded.err());
    if (subscriptions_.contains(id)) {
      return error_reply(id, {errc::invalid_argument,
                              fmt::format("subscription {} is open already: a subscribe needs a "
                                          "request id of its own",
                                          id)});
    }
    if (subscriptions_.size() >= core_->options.max_subscriptions_per_connection) {
      return error_reply(id, {errc::overloaded,
                              fmt::format("a connection holds at most {} subscriptions",
                                          core_->options.max_subscriptions_per_connection)});
    }
    actors::subscription_request request;
    request.target = std::move(decoded->target);
    request.from = std::move(decoded->from);
    if (!decoded->filter.empty()) {
      auto filter = actors::compile_where_filter(decoded->filter);
      if (!filter) return error_reply(id, filter.err());
      request.where = std::move(filter).value();
    }
    auto options = core_->options.subscription;
    options.page_bytes = std::min(options.page_bytes, read_all_budget());
    options.page_events = std::min<std::size_t>(options.page_events,
                                                core_->options.max_batch_events);
    // The callbacks name the subscription by id and generation: one still
    // queued when it ends must not reach a newer subscription with its id.
    const std::uint64_t generation = ++subscription_generation_;
    actors::subscription_callbacks callbacks;
    auto weak = weak_from_this();
    callbacks.started = [weak, id,
                         generation](engine::result<std::vector<actors::all_position>> r) {
      deliver(weak, [id, generation, r = std::move(r)](connection& c) mutable {
        if (c.open_subscription(id, generation)) c.on_subscription_started(id, std::move(r));
      });
    };
    callbacks.events = [weak, id, generation](actors::subscription_batch batch) {
      deliver(weak, [id, generation, batch = std::move(batch)](connection& c) mutable {
        if (c.open_subscription(id, generation)) c.on_subscription_events(id, std::move(batch));
      });
    };
    callbacks.ended = [weak, id, generation](engine::error e) {
      deliver(weak, [id, generation, e = std::move(e)](connection& c) {
        if (c.open_subscription(id, generation)) c.end_subscription(id, &e);
      });
    };
    auto schedule = [&io = core_->io](std::chrono::milliseconds delay, std::function<void()> task) {
      auto timer = std::make_shared<asio::steady_timer>(io, delay);
      timer->async_wait([timer, task = std::move(task)](asio::error_code ec) {
        if (!ec) task();
      });
    };
    auto started = actors::subscription::start(core_->handler, std::move(request), options,
                                               std::move(callbacks), std::move(schedule),
                                               &core_->metrics, decoded->credits);
    subscriptions_.emplace(id, subscription_entry{std::move(started), generation});
  }

  // The open subscription `id` if it is the one of `generation`, else null.
  subscription_entry* open_subscription(std::uint64_t id, std::uint64_t generation) {
    if (closed_) return nullptr;
    auto it = subscriptions_.find(id);
    return it != subscriptions_.end() && it->second.generation == generation ? &it->second
                                                                             : nullptr;
  }

  // Requires: `id` is open (open_subscription).
  void on_subscription_started(std::uint64_t id,
                               engine::result<std::vector<actors::all_position>> r) {
    if (!r) {
      subscriptions_.erase(id);
      error_reply(id, r.err());
    } else {
      respond(id, [&](wire::Response::Builder out) {
        wire_codec::encode_subscribed(out.initSubscribed(), r.value());
      });
    }
    after_replies();
  }

  // Requires: `id` is open (open_subscription).
  void on_subscription_events(std::uint64_t id, actors::subscription_batch batch) {
    auto& entry = subscriptions_.at(id);
    // The subscription reads its next page while this one is encoded and
    // written (the read runs on an actor thread, the encoding here), but it
    // has at most two pages encoded and unwritten here: with an earlier one
    // still unwritten, the acknowledgement waits until that one is written
    // (on_write). So a client that reads nothing costs two pages plus the
    // socket's buffers.
    if (entry.unwritten == 0) {
      entry.sub->ack();
    } else {
      entry.ack_due = true;
    }
    ++entry.unwritten;
    respond(id, [&](wire::Response::Builder out) {
      wire_codec::encode_subscription_events(out.initSubscriptionEvents(), batch);
    }, batch_words(batch));
    out_pages_.push_back({id, entry.generation});
    after_replies();
  }

  void unsubscribe(std::uint64_t id) {
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;  // ended already: its end was sent
    it->second.sub->cancel();
    end_subscription(id, nullptr);
  }

  // Answers subscriptionEnded (failed when `e` is set) and forgets `id`.
  void end_subscription(std::uint64_t id, const engine::error* e) {
    if (closed_ || subscriptions_.erase(id) == 0) return;
    respond(id, [&](wire::Response::Builder out) {
      auto ended = out.initSubscriptionEnded();
      ended.setFailed(e != nullptr);
      if (e) wire_codec::encode_error(ended.initError(), *e);
    });
    after_replies();
  }

  static std::size_t batch_words(const actors::subscription_batch& batch) {
    auto words = [](std::size_t bytes) { return (bytes + 7) / 8; };
    std::size_t total = 16 + batch.next.size();
    for (const auto& e : batch.events) {
      total += 3 + 8 + words(e.stream.size() + 1) + words(e.event.type.size() + 1) +
               words(e.event.data.size()) + words(e.event.metadata.size());
    }
    return total;
  }

  // A client's query is answered with the finished answer; a node's fan-out
  // (wantPartial) with the partial result, which that node merges.
  void handle_query(std::uint64_t id, wire::QueryRequest::Reader in,
                    actors::request_handler& handler) {
    auto received = decode_query_request(in, engine::system_clock().now_us());
    if (!received) return error_reply(id, received.err());
    auto plan = engine::query::plan::compile(received->request.query);
    if (!plan) return error_reply(id, plan.err());
    ++inflight_;
    received->request.cancel = std::make_shared<std::atomic<bool>>(false);
    queries_[id] = received->request.cancel;
    if (received->want_partial) {
      return handler.query(
          std::move(received->request),
          make_reply<engine::query::partial_result>(id, [plan = *plan](auto out, const auto& r) {
            engine::query::encode_partial_result(r, *plan, out.initQuery().initPartial());
          }));
    }
    auto answer = make_reply<engine::query::query_answer>(id, [](auto out, const auto& r) {
      engine::query::encode_query_answer(r, out.initQuery().initAnswer());
    });
    handler.query(std::move(received->request),
                  [plan = *plan, answer = std::move(answer)](
                      engine::result<engine::query::partial_result> r) mutable {
                    if (!r) return answer(std::move(r.err()));
                    answer(engine::query::finish(std::move(r).value(), *plan));
                  });
  }

  // Partition handoff requests (node to node; docs/cluster.md).
  void handle_transfer(std::uint64_t id, wire::Request::Reader request) {
    auto* transfer = core_->options.transfer;
    if (!transfer) {
      return error_reply(id, {errc::unknown_request,
                              "this node takes no partition handoff requests"});
    }
    auto sealed_reply = [](auto out, const lsn& end) { out.initSealed().setEnd(end.value()); };
    ++inflight_;
    switch (request.which()) {
      case wire::Request::SHIP_LOG: {
        auto in = request.getShipLog();
        // The batch must fit in a reply frame.
        const std::size_t max_bytes =
            std::min<std::size_t>(in.getMaxBytes(), core_->options.max_frame_bytes / 2);
        return transfer->ship_log(partition_id{in.getPartition()}, lsn{in.getFrom()}, max_bytes,
                                  make_reply<engine::shipped_batch>(id, [](auto out,
                                                                           const auto& batch) {
                                    wire_codec::encode_shipped_batch(out.initShippedLog(), batch);
                                  }));
      }
      case wire::Request::SEAL_PARTITION: {
        auto in = request.getSealPartition();
        return transfer->seal(partition_id{in.getPartition()},
                              std::chrono::milliseconds(in.getHoldMs()),
                              make_reply<lsn>(id, sealed_reply));
      }
      default:
        return transfer->unseal(partition_id{request.getUnsealPartition().getPartition()},
                                make_reply<lsn>(id, sealed_reply));
    }
  }

  // A reply_fn that hands the result to this connection's strand through
  // inbox_. It holds the connection weakly: a reply for a closed connection
  // is dropped.
  template <class T, class Encode>
  actors::reply_fn<T> make_reply(std::uint64_t id, Encode encode) {
    return [weak = weak_from_this(), id, encode](engine::result<T> r) {
      deliver(weak,
              [id, encode, r = std::move(r)](connection& c) { c.complete<T>(id, r, encode); });
    };
  }

  // make_reply for a long-poll: counted in waiting_ until it completes.
  template <class T, class Encode>
  actors::reply_fn<T> make_waiting_reply(std::uint64_t id, Encode encode) {
    return [weak = weak_from_this(), id, encode](engine::result<T> r) {
      deliver(weak, [id, encode, r = std::move(r)](connection& c) {
        --c.waiting_;
        ++c.inflight_;
        c.complete<T>(id, r, encode);
      });
    };
  }

  // Queues a completion for the strand; the first of a burst schedules the
  // drain that runs them all (net/completion_inbox.hpp).
  template <class F>
  static void deliver(const std::weak_ptr<connection>& weak, F f) {
    auto self = weak.lock();
    if (!self) return;
    auto* raw = self.get();
    if (raw->inbox_.push(std::move(f))) {
      asio::post(raw->strand_, [self = std::move(self)] { self->drain_inbox(); });
    }
  }

  // The replies of a burst are encoded first and then written together.
  void drain_inbox() {
    draining_ = true;
    inbox_.drain(*this);
    draining_ = false;
    after_replies();
  }

  actors::reply_fn<engine::read_page> read_reply(std::uint64_t id) {
    const std::size_t max_bytes = core_->options.max_frame_bytes - k_frame_slack_bytes;
    return make_reply<engine::read_page>(id, [max_bytes](auto out, const auto& page) {
      wire_codec::encode_read_page(out.initRead(), page, max_bytes);
    });
  }

  // Event bytes of a read-all page (actors::read_all_page counts them with a
  // per-event overhead): room for the page and its position list in a frame.
  std::size_t read_all_budget() const {
    const std::size_t frame = core_->options.max_frame_bytes;
    const std::size_t fixed =
        k_frame_slack_bytes + 16 * std::size_t{core_->options.partition_count};
    return std::min(actors::k_read_all_max_bytes, frame > 2 * fixed ? frame - fixed : frame / 2);
  }

  actors::reply_fn<actors::write_reply> write_reply(std::uint64_t id) {
    return make_reply<actors::write_reply>(id, [](auto out, const auto& r) {
      wire_codec::encode_write_reply(out.initWrite(), r);
    });
  }

  template <class T, class Encode>
  void complete(std::uint64_t id, const engine::result<T>& r, const Encode& encode) {
    --inflight_;
    if (!queries_.empty()) queries_.erase(id);
    if (closed_) return;
    if (r) {
      respond(id, [&](wire::Response::Builder out) { encode(out, r.value()); },
              reply_words(r.value()));
    } else {
      respond(id, [&](wire::Response::Builder out) { wire_codec::encode_error(out.initError(), r.err()); });
    }
    after_replies();
  }

  // After replies or pushes were added: writes them and reads on, unless the
  // frame loop or an inbox drain is running (it does so when it ends).
  void after_replies() {
    if (processing_ || draining_ || closed_) return;
    flush();
    if (closing_) return maybe_finish();
    process_frames();
  }

  // `size_words`: the reply's expected size. A reply larger than the scratch
  // space is built in one segment of that size: a single-segment message is
  // cheaper for the client to read (no segment lookups across segments).
  template <class Fill>
  void respond(std::uint64_t id, Fill&& fill, std::size_t size_words = 0) {
    if (size_words > k_reply_scratch_words) {
      capnp::MallocMessageBuilder message(static_cast<unsigned>(size_words));
      build(message, id, fill);
    } else {
      capnp::MallocMessageBuilder message(reply_scratch_);
      build(message, id, fill);
    }
  }

  template <class Fill>
  void build(capnp::MallocMessageBuilder& message, std::uint64_t id, Fill& fill) {
    auto out = message.initRoot<wire::Response>();
    out.setId(id);
    fill(out);
    // Measured as framed, like the client's check of its requests.
    const std::size_t start = out_.size();
    append_frame(out_, message);
    const std::size_t bytes = out_.size() - start - k_frame_header_bytes;
    if (bytes > core_->options.max_frame_bytes) {
      out_.resize(start);
      oversized_reply(id, bytes);
    }
  }

  // The frame limit holds both ways: a reply that would not fit (a query
  // answer listing large events; reads and pages are cut to fit) is
  // answered with frame_too_large instead. The connection goes on.
  void oversized_reply(std::uint64_t id, std::size_t bytes) {
    const engine::error e{
        errc::frame_too_large,
        fmt::format("the reply would take {} bytes, over the frame limit of {} bytes; ask for "
                    "less (fewer or smaller events)",
                    bytes, core_->options.max_frame_bytes)};
    core_->metrics.count_error(e.code);
    capnp::MallocMessageBuilder message;  // not reply_scratch_: the oversized one may use it
    auto out = message.initRoot<wire::Response>();
    out.setId(id);
    wire_codec::encode_error(out.initError(), e);
    append_frame(out_, message);
  }

  // Expected size in words of a reply carrying `value` (0: small).
  template <class T>
  static std::size_t reply_words(const T&) { return 0; }
  static std::size_t reply_words(const actors::read_all_page& page) {
    auto words = [](std::size_t bytes) { return (bytes + 7) / 8; };
    std::size_t total = 16 + page.next.size();
    for (const auto& e : page.events) {
      // AllEvent (1 data word, 2 pointers) + RecordedEvent + blobs.
      total += 3 + 8 + words(e.stream.size() + 1) + words(e.event.type.size() + 1) +
               words(e.event.data.size()) + words(e.event.metadata.size());
    }
    return total;
  }
  static std::size_t reply_words(const engine::read_page& page) {
    auto words = [](std::size_t bytes) { return (bytes + 7) / 8; };
    std::size_t total = 16;  // Response, ReadReply, list tag
    for (const auto& e : page.events) {
      // RecordedEvent: 5 data words + 3 pointers, then its three blobs.
      total += 8 + words(e.type.size() + 1) + words(e.data.size()) + words(e.metadata.size());
    }
    return total;
  }

  // A bad but well-framed request: answered, the connection goes on.
  void error_reply(std::uint64_t id, const engine::error& error) {
    core_->metrics.count_error(error.code);
    respond(id, [&](wire::Response::Builder out) { wire_codec::encode_error(out.initError(), error); });
  }

  // Damage the connection cannot recover from: answer, then close cleanly.
  void fail(std::uint64_t id, errc code, std::string message) {
    if (closing_ || closed_) return;
    spdlog::debug("binary connection: closing after {}: {}", engine::errc_name(code), message);
    error_reply(id, {code, std::move(message)});
    closing_ = true;
    cancel_subscriptions();
    cancel_queries();
    if (!processing_) {
      flush();
      maybe_finish();
    }
  }

  void flush() {
    if (write_active_ || out_.empty() || closed_) return;
    std::swap(out_, writing_);
    std::swap(out_pages_, writing_pages_);
    write_active_ = true;
    asio::async_write(socket_, asio::buffer(writing_),
                      asio::bind_executor(strand_, [self = shared_from_this()](
                                                       asio::error_code ec, std::size_t) {
                        self->on_write(ec);
                      }));
  }

  void on_write(asio::error_code ec) {
    write_active_ = false;
    writing_.clear();
    auto written = std::move(writing_pages_);
    writing_pages_.clear();
    for (const auto& page : written) {
      // Its subscription may be gone (ended), and its id taken by a newer one.
      auto* entry = open_subscription(page.id, page.generation);
      if (entry != nullptr && entry->unwritten > 0) --entry->unwritten;
    }
    if (closed_) return;
    if (ec) {
      spdlog::debug("binary connection: write failed: {}", ec.message());
      return close_now();
    }
    // Pages written: their subscriptions, if left with only their newest page
    // unwritten, read on. Only these flows changed.
    for (const auto& page : written) {
      auto* entry = open_subscription(page.id, page.generation);
      if (entry == nullptr || !entry->ack_due || entry->unwritten > 1) continue;
      entry->ack_due = false;
      entry->sub->ack();
    }
    flush();
    if (closing_) return maybe_finish();
    process_frames();  // output below the limit again: read on
  }

  // In closing mode: once every reply is written, shut down our side and
  // drain input until the peer closes (or `linger` passes).
  void maybe_finish() {
    if (closed_ || !closing_ || inflight_ > 0 || write_active_ || !out_.empty()) return;
    if (!sent_shutdown_) {
      sent_shutdown_ = true;
      asio::error_code ignored;
      socket_.shutdown(tcp::socket::shutdown_send, ignored);
      arm_idle_timer(core_->options.linger);
    }
    if (read_closed_) return close_now();
    do_read();
  }

  void arm_idle_timer(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (ec != asio::error::operation_aborted) self->on_timer();
    });
  }

  void on_timer() {
    if (closed_) return;
    if (sent_shutdown_) return close_now();  // linger over
    if (closing_) return;                    // still writing; maybe_finish arms the linger
    const auto idle = core_->options.idle_timeout;
    const auto since = steady::now() - last_frame_;
    // Open subscriptions and long-polls are activity too.
    const bool busy = inflight_ > 0 || waiting_ > 0 || !subscriptions_.empty();
    if (!busy && since >= idle) {
      return fail(0, errc::timeout,
                  fmt::format("no request for {} ms: idle connection closed", idle.count()));
    }
    arm_idle_timer(busy ? idle
                                 : std::chrono::duration_cast<std::chrono::milliseconds>(
                                       idle - since) +
                                       std::chrono::milliseconds(1));
  }

  // A connection that closes pushes nothing more.
  void cancel_subscriptions() {
    for (auto& [id, entry] : subscriptions_) entry.sub->cancel();
    subscriptions_.clear();
  }

  // Nobody reads the answers of a closing connection's queries: they stop
  // scanning and answer connection_lost.
  void cancel_queries() {
    for (auto& [id, cancel] : queries_) cancel->store(true, std::memory_order_relaxed);
    queries_.clear();
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    cancel_subscriptions();
    cancel_queries();
    out_pages_.clear();
    asio::error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    core_->remove(this, counted_);
  }

  std::shared_ptr<binary_server::core> core_;
  asio::strand<asio::io_context::executor_type> strand_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  const bool counted_;  // against max_connections (false: being rejected)

  receive_buffer in_;
  std::size_t need_bytes_ = 0;  // receive room the frame in progress needs
  aligned_scratch scratch_;
  std::vector<std::byte> out_;      // replies not yet handed to the socket
  std::vector<std::byte> writing_;  // the write in progress
  kj::Array<capnp::word> reply_scratch_;
  completion_inbox<connection> inbox_;  // replies from actor threads
  std::size_t inflight_ = 0;
  std::size_t waiting_ = 0;  // long-poll readAll requests (not in inflight_)
  std::unordered_map<std::uint64_t, actors::query_cancel> queries_;  // in flight, by request id
  steady::time_point last_frame_;
  // Open subscriptions by their subscribe request's id.
  std::unordered_map<std::uint64_t, subscription_entry> subscriptions_;
  std::uint64_t subscription_generation_ = 0;  // of the newest subscribe
  // The subscription of each page in out_ / writing_.
  struct page_ref {
    std::uint64_t id;
    std::uint64_t generation;
  };
  std::vector<page_ref> out_pages_;
  std::vector<page_ref> writing_pages_;

  bool hello_done_ = false;
  bool reading_ = false;
  bool write_active_ = false;
  bool processing_ = false;
  bool draining_ = false;     // in drain_inbox()
  bool closing_ = false;      // no more requests: finish replies, then close
  bool read_closed_ = false;  // the peer closed its side (or the read failed)
  bool sent_shutdown_ = false;
  bool closed_ = false;
};

}  // namespace

void binary_server::core::accept() {
  acceptor.async_accept(asio::bind_executor(
      accept_strand, [self = shared_from_this()](asio::error_code ec, tcp::socket socket) {
        self->on_accept(ec, std::move(socket));
      }));
}

void binary_server::core::on_accept(asio::error_code ec, tcp::socket socket) {
  {
    std::lock_guard lock(mu);
    if (stopped) return;
  }
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    spdlog::warn("binary server: accept failed: {}; retrying in 100 ms", ec.message());
    accept_backoff.expires_after(std::chrono::milliseconds(100));
    accept_backoff.async_wait([self = shared_from_this()](asio::error_code wait_ec) {
      if (!wait_ec) self->accept();
    });
    return;
  }
  asio::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const bool counted = open.load() < options.max_connections;
  if (counted) {
    open.fetch_add(1);
    metrics.connections_accepted.fetch_add(1, std::memory_order_relaxed);
    metrics.connections_open.fetch_add(1, std::memory_order_relaxed);
  }
  auto c = std::make_shared<connection>(shared_from_this(), std::move(socket), counted);
  {
    std::lock_guard lock(mu);
    if (stopped) {  // stop() ran since the check above: this one is never served
      if (counted) {
        open.fetch_sub(1);
        metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
      }
      return;
    }
    connections.emplace(c.get(), c);
  }
  asio::post(c->strand(), [c] { c->start(); });
  accept();
}

void binary_server::core::remove(connection* c, bool counted) {
  if (counted) {
    open.fetch_sub(1);
    metrics.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }
  std::shared_ptr<connection> last;  // released outside the lock
  std::lock_guard lock(mu);
  if (auto it = connections.find(c); it != connections.end()) {
    last = std::move(it->second);
    connections.erase(it);
  }
}

binary_server::binary_server(asio::io_context& io, actors::request_handler& handler,
                             actors::node_metrics& metrics, binary_server_options options)
    : core_(std::make_shared<core>(io, handler, metrics, std::move(options))) {}

binary_server::~binary_server() { stop(); }

engine::result<tcp::endpoint> binary_server::listen(const std::string& host, std::uint16_t port) {
  {
    std::lock_guard lock(core_->mu);
    if (core_->stopped) return engine::error{errc::shutting_down, "the server is stopped"};
  }
  asio::error_code ec;
  tcp::endpoint endpoint;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, port);
  } else {
    tcp::resolver resolver(core_->io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return engine::error{errc::io_error,
                           fmt::format("cannot resolve {}: {}", host, ec.message())};
    }
    endpoint = results.begin()->endpoint();
  }
  auto& acceptor = core_->acceptor;
  const auto failed = [&](const char* what) -> engine::error {
    asio::error_code ignored;
    acceptor.close(ignored);
    return engine::error{errc::io_error,
                         fmt::format("{} {}:{}: {}", what, host, port, ec.message())};
  };
  if (acceptor.open(endpoint.protocol(), ec)) return failed("open");
  if (acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) return failed("configure");
  if (acceptor.bind(endpoint, ec)) return failed("bind");
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return failed("listen");
  auto bound = acceptor.local_endpoint(ec);
  if (ec) return failed("query");
  spdlog::info("binary protocol listening on {}:{}", bound.address().to_string(), bound.port());
  asio::post(core_->accept_strand, [c = core_] { c->accept(); });
  return bound;
}

void binary_server::stop() {
  std::vector<std::shared_ptr<connection>> open;
  {
    std::lock_guard lock(core_->mu);
    if (core_->stopped) return;
    core_->stopped = true;
    // The map lets go of its connections here, not in remove(): the close
    // posted below may never run if the io_context stops first, and a
    // connection holds its core, so keeping them would be a cycle.
    for (auto& [raw, c] : core_->connections) open.push_back(std::move(c));
    core_->connections.clear();
  }
  asio::post(core_->accept_strand, [c = core_] {
    asio::error_code ignored;
    c->acceptor.close(ignored);
    c->accept_backoff.cancel();
  });
  for (auto& c : open) c->close_from_outside();
}

std::size_t binary_server::connection_count() const { return core_->open.load(); }

}  // namespace annal::net
