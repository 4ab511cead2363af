#include "client/connection.hpp"

#include <cstring>
#include <limits>

#include <asio/bind_executor.hpp>
#include <asio/connect.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/query/partial_result_codec.hpp"
#include "engine/query/plan.hpp"
#include "net/query_wire.hpp"
#include "net/wire_codec.hpp"

namespace annal::client {

using asio::ip::tcp;
using engine::errc;
namespace wire_codec = net::wire_codec;

namespace {

constexpr std::size_t k_min_read_bytes = 64u << 10;
constexpr std::size_t k_request_scratch_words = 1024;
// Replies may be up to this large whatever the node announced (a node cuts
// read pages to its own limit; this is the client's allocation bound).
constexpr std::size_t k_max_reply_frame_bytes = 256u << 20;

engine::error malformed(std::string what) {
  return engine::error{errc::malformed_request, "undecodable reply: " + std::move(what)};
}

}  // namespace

connection::connection(private_tag, asio::io_context& io, client_options options)
    : options_(std::move(options)),
      io_(io),
      strand_(asio::make_strand(io)),
      socket_(strand_),
      resolver_(strand_),
      connect_timer_(strand_),
      request_timer_(strand_),
      request_scratch_(kj::heapArray<capnp::word>(k_request_scratch_words)) {
  std::memset(request_scratch_.begin(), 0, request_scratch_.size() * sizeof(capnp::word));
}

void connection::connect(asio::io_context& io, client_options options, connect_callback done) {
  auto c = std::make_shared<connection>(private_tag{}, io, std::move(options));
  asio::dispatch(c->strand_, [c, done = std::move(done)]() mutable {
    c->start_connect(std::move(done));
  });
}

void connection::start_connect(connect_callback done) {
  connect_done_ = std::move(done);
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || !self->connect_done_) return;
    self->close_now({errc::timeout, fmt::format("connecting to {}:{} took over {} ms",
                                                self->options_.host, self->options_.port,
                                                self->options_.connect_timeout.count())});
  });
  resolver_.async_resolve(
      options_.host, std::to_string(options_.port),
      [self = shared_from_this()](std::error_code ec, tcp::resolver::results_type results) {
        if (self->closed_) return;
        if (ec) {
          return self->close_now({errc::io_error, fmt::format("cannot resolve {}: {}",
                                                              self->options_.host, ec.message())});
        }
        asio::async_connect(self->socket_, results,
                            [self](std::error_code ec, const tcp::endpoint&) {
                              if (self->closed_) return;
                              if (ec) {
                                return self->close_now(
                                    {errc::connection_lost,
                                     fmt::format("cannot connect to {}:{}: {}", self->options_.host,
                                                 self->options_.port, ec.message())});
                              }
                              std::error_code ignored;
                              self->socket_.set_option(tcp::no_delay(true), ignored);
                              self->send_hello();
                            });
      });
}

void connection::send_hello() {
  open_ = true;
  server_.max_frame_bytes = net::k_default_max_frame_bytes;  // until the node says
  reply_handler on_hello = [self = shared_from_this()](const reply_event& event) {
    auto done = std::exchange(self->connect_done_, nullptr);
    if (!done) return;
    self->connect_timer_.cancel();
    if (event.error) {
      done(*event.error);
      return self->close_now({errc::connection_lost, "handshake failed"});
    }
    auto response = *event.response;
    if (response.which() == wire::Response::ERROR) {
      auto error = wire_codec::decode_error(response.getError());
      done(error);
      return self->close_now(error);
    }
    if (response.which() != wire::Response::HELLO) {
      done(malformed("the node did not answer hello"));
      return self->close_now(malformed("the node did not answer hello"));
    }
    auto hello = response.getHello();
    self->server_.protocol_version = hello.getProtocolVersion();
    self->server_.node_id = hello.getNodeId();
    self->server_.partition_count = hello.getPartitionCount();
    self->server_.max_frame_bytes = hello.getMaxFrameBytes();
    self->server_.max_batch_events = hello.getMaxBatchEvents();
    done(self);
  };
  std::string name = options_.client_name;
  start_request(on_hello, [name](wire::Request::Builder out) {
    auto hello = out.initHello();
    hello.setProtocolVersion(wire::PROTOCOL_VERSION);
    hello.setClientName(name);
  });
  do_read();
}

template <class T, class Decode>
connection::reply_handler connection::typed(callback<T> done, Decode decode) {
  return [done = std::move(done), decode](const reply_event& event) {
    if (event.error) return done(*event.error);
    auto response = *event.response;
    if (response.which() == wire::Response::ERROR) {
      return done(wire_codec::decode_error(response.getError()));
    }
    std::optional<engine::result<T>> decoded;
    try {
      decoded.emplace(decode(response, event.payload));
    } catch (const kj::Exception& e) {
      decoded.emplace(malformed(e.getDescription().cStr()));
    }
    done(std::move(*decoded));
  };
}

namespace {

// Replies whose values point into the message get their own copy of it.
template <class Decode>
auto decode_kept(std::span<const std::byte> payload, Decode decode) {
  auto words = net::copy_to_words(payload);
  capnp::FlatArrayMessageReader message(words->asPtr(), net::reader_options());
  return decode(message.getRoot<wire::Response>(), std::shared_ptr<const void>(words));
}

engine::error wrong_reply(const char* expected) {
  return malformed(fmt::format("expected a {} reply", expected));
}

}  // namespace

void connection::append(actors::append_request request, callback<actors::append_reply> done) {
  submit(typed<actors::append_reply>(
             std::move(done),
             [](wire::Response::Reader r, auto) -> engine::result<actors::append_reply> {
               if (r.which() != wire::Response::APPEND) return wrong_reply("append");
               return wire_codec::decode_append_reply(r.getAppend());
             }),
         [request = std::move(request)](wire::Request::Builder out) {
           wire_codec::encode_append(out.initAppend(), request);
         });
}

namespace {

engine::result<engine::read_page> decode_read_reply(wire::Response::Reader r,
                                                    std::span<const std::byte> payload) {
  if (r.which() != wire::Response::READ) return wrong_reply("read");
  return decode_kept(payload, [](wire::Response::Reader kept, std::shared_ptr<const void> keep) {
    return wire_codec::decode_read_page(kept.getRead(), std::move(keep));
  });
}

engine::result<actors::write_reply> decode_write(wire::Response::Reader r,
                                                 std::span<const std::byte>) {
  if (r.which() != wire::Response::WRITE) return wrong_reply("write");
  return wire_codec::decode_write_reply(r.getWrite());
}

}  // namespace

void connection::read(actors::read_request request, callback<engine::read_page> done) {
  submit(typed<engine::read_page>(std::move(done), decode_read_reply),
         [request = std::move(request)](wire::Request::Builder out) {
           wire_codec::encode_read(out.initRead(), request);
         });
}

void connection::read_last(std::string stream, callback<engine::read_page> done) {
  submit(typed<engine::read_page>(std::move(done), decode_read_reply),
         [stream = std::move(stream)](wire::Request::Builder out) {
           out.initReadLast().setStream(stream);
         });
}

void connection::get_stream_info(std::string stream, callback<engine::stream_info> done) {
  submit(typed<engine::stream_info>(
             std::move(done),
             [](wire::Response::Reader r, auto) -> engine::result<engine::stream_info> {
               if (r.which() != wire::Response::STREAM_INFO) return wrong_reply("stream info");
               return wire_codec::decode_stream_info(r.getStreamInfo());
             }),
         [stream = std::move(stream)](wire::Request::Builder out) {
           out.initGetMetadata().setStream(stream);
         });
}

void connection::set_metadata(std::string stream, engine::stream_metadata metadata,
                              callback<actors::write_reply> done) {
  submit(typed<actors::write_reply>(std::move(done), decode_write),
         [stream = std::move(stream), metadata](wire::Request::Builder out) {
           auto in = out.initSetMetadata();
           in.setStream(stream);
           wire_codec::encode_metadata(in.initMetadata(), metadata);
         });
}

void connection::delete_stream(std::string stream, engine::expected_version expected,
                               bool tombstone, callback<actors::write_reply> done) {
  submit(typed<actors::write_reply>(std::move(done), decode_write),
         [stream = std::move(stream), expected, tombstone](wire::Request::Builder out) {
           auto in = out.initDeleteStream();
           in.setStream(stream);
           wire_codec::encode_expected(in.initExpected(), expected);
           in.setTombstone(tombstone);
         });
}

void connection::put_snapshot(std::string stream, stream_version version, std::string payload,
                              callback<actors::write_reply> done) {
  submit(typed<actors::write_reply>(std::move(done), decode_write),
         [stream = std::move(stream), version, payload = std::move(payload)](
             wire::Request::Builder out) {
           auto in = out.initPutSnapshot();
           in.setStream(stream);
           in.setVersion(version.value());
           in.setPayload(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(payload.data()),
                                             payload.size()));
         });
}

void connection::get_snapshot(std::string stream,
                              callback<std::optional<engine::snapshot_read>> done) {
  using value = std::optional<engine::snapshot_read>;
  submit(typed<value>(std::move(done),
                      [](wire::Response::Reader r,
                         std::span<const std::byte> payload) -> engine::result<value> {
                        if (r.which() != wire::Response::SNAPSHOT) return wrong_reply("snapshot");
                        return decode_kept(payload, [](wire::Response::Reader kept,
                                                       std::shared_ptr<const void> keep) {
                          return wire_codec::decode_snapshot(kept.getSnapshot(), std::move(keep));
                        });
                      }),
         [stream = std::move(stream)](wire::Request::Builder out) {
           out.initGetSnapshot().setStream(stream);
         });
}

void connection::read_all(actors::read_all_request request, callback<actors::read_all_page> done) {
  using value = actors::read_all_page;
  submit(typed<value>(std::move(done),
                      [](wire::Response::Reader r,
                         std::span<const std::byte> payload) -> engine::result<value> {
                        if (r.which() != wire::Response::READ_ALL) return wrong_reply("read-all");
                        return decode_kept(payload, [](wire::Response::Reader kept,
                                                       std::shared_ptr<const void> keep) {
                          return wire_codec::decode_read_all_page(kept.getReadAll(),
                                                                  std::move(keep));
                        });
                      }),
         [request = std::move(request)](wire::Request::Builder out) {
           wire_codec::encode_read_all(out.initReadAll(), request);
         });
}

void connection::query(std::string text, bool allow_partial, std::uint32_t timeout_ms,
                       callback<engine::query::query_answer> done) {
  using value = engine::query::query_answer;
  submit(typed<value>(std::move(done),
                      [](wire::Response::Reader r, auto) -> engine::result<value> {
                        if (r.which() != wire::Response::QUERY || !r.getQuery().isAnswer()) {
                          return wrong_reply("query answer");
                        }
                        return engine::query::decode_query_answer(r.getQuery().getAnswer());
                      }),
         [text = std::move(text), allow_partial, timeout_ms](wire::Request::Builder out) {
           net::encode_query_text(out.initQuery(), text, allow_partial, timeout_ms);
         });
}

void connection::query_partial(actors::query_request request,
                               callback<engine::query::partial_result> done) {
  using value = engine::query::partial_result;
  // The partial result decodes against the plan the other node scanned with.
  auto plan = engine::query::plan::compile(request.query);
  if (!plan) return done(plan.err());
  submit(typed<value>(std::move(done),
                      [plan = *plan](wire::Response::Reader r, auto) -> engine::result<value> {
                        if (r.which() != wire::Response::QUERY || !r.getQuery().isPartial()) {
                          return wrong_reply("partial query result");
                        }
                        return engine::query::decode_partial_result(r.getQuery().getPartial(),
                                                                    *plan);
                      }),
         [request = std::move(request)](wire::Request::Builder out) {
           net::encode_query_fan_out(out.initQuery(), request);
         });
}

void connection::stats(callback<std::vector<actors::partition_stats>> done) {
  using value = std::vector<actors::partition_stats>;
  submit(typed<value>(std::move(done),
                      [](wire::Response::Reader r, auto) -> engine::result<value> {
                        if (r.which() != wire::Response::STATS) return wrong_reply("stats");
                        return wire_codec::decode_stats(r.getStats());
                      }),
         [](wire::Request::Builder out) { out.setStats(); });
}

namespace {

engine::result<lsn> decode_sealed(wire::Response::Reader r, std::span<const std::byte>) {
  if (r.which() != wire::Response::SEALED) return wrong_reply("sealed");
  return lsn{r.getSealed().getEnd()};
}

}  // namespace

void connection::ship_log(partition_id p, lsn from, std::size_t max_bytes,
                          callback<engine::shipped_batch> done) {
  submit(typed<engine::shipped_batch>(
             std::move(done),
             [](wire::Response::Reader r, auto) -> engine::result<engine::shipped_batch> {
               if (r.which() != wire::Response::SHIPPED_LOG) return wrong_reply("shipped log");
               return wire_codec::decode_shipped_batch(r.getShippedLog());
             }),
         [p, from, max_bytes](wire::Request::Builder out) {
           auto in = out.initShipLog();
           in.setPartition(p.value());
           in.setFrom(from.value());
           in.setMaxBytes(static_cast<std::uint32_t>(
               std::min<std::size_t>(max_bytes, std::numeric_limits<std::uint32_t>::max())));
         });
}

void connection::seal_partition(partition_id p, std::chrono::milliseconds hold_for,
                                callback<lsn> done) {
  submit(typed<lsn>(std::move(done), decode_sealed), [p, hold_for](wire::Request::Builder out) {
    auto in = out.initSealPartition();
    in.setPartition(p.value());
    in.setHoldMs(static_cast<std::uint32_t>(hold_for.count()));
  });
}

void connection::unseal_partition(partition_id p, callback<lsn> done) {
  submit(typed<lsn>(std::move(done), decode_sealed), [p](wire::Request::Builder out) {
    out.initUnsealPartition().setPartition(p.value());
  });
}

void connection::ping(std::function<void(engine::status)> done) {
  submit(
      [done = std::move(done)](const reply_event& event) {
        if (event.error) return done(*event.error);
        auto response = *event.response;
        if (response.which() == wire::Response::ERROR) {
          return done(wire_codec::decode_error(response.getError()));
        }
        if (response.which() != wire::Response::PONG) return done(wrong_reply("pong"));
        done(engine::status{});
      },
      [](wire::Request::Builder out) { out.setPing(); });
}

void connection::subscribe(net::wire_codec::subscribe_params params,
                           subscription_handlers handlers) {
  auto shared = std::make_shared<subscription_handlers>(std::move(handlers));
  submit(
      [weak = weak_from_this(), shared](const reply_event& event) {
        if (event.error) return shared->subscribed(*event.error);
        auto response = *event.response;
        if (response.which() == wire::Response::ERROR) {
          return shared->subscribed(wire_codec::decode_error(response.getError()));
        }
        if (response.which() != wire::Response::SUBSCRIBED) {
          return shared->subscribed(wrong_reply("subscribed"));
        }
        subscription_started started{response.getId(),
                                     wire_codec::decode_subscribed(response.getSubscribed())};
        auto self = weak.lock();
        if (!self || self->closed_) {
          return shared->subscribed(
              engine::error{errc::connection_lost, "the connection is closed"});
        }
        self->subscriptions_.emplace(started.id, shared);
        shared->subscribed(std::move(started));
      },
      [params = std::move(params)](wire::Request::Builder out) {
        wire_codec::encode_subscribe(out.initSubscribe(), params);
      });
}

void connection::grant_credits(std::uint64_t subscription, std::uint32_t credits) {
  asio::dispatch(strand_, [self = shared_from_this(), subscription, credits] {
    self->send_oneway([subscription, credits](wire::Request::Builder out) {
      auto grant = out.initGrantCredits();
      grant.setSubscription(subscription);
      grant.setCredits(credits);
    });
  });
}

void connection::unsubscribe(std::uint64_t subscription) {
  asio::dispatch(strand_, [self = shared_from_this(), subscription] {
    self->send_oneway([subscription](wire::Request::Builder out) {
      out.initUnsubscribe().setSubscription(subscription);
    });
  });
}

void connection::send_oneway(fill_fn fill) {
  if (closed_) return;
  capnp::MallocMessageBuilder message(request_scratch_);
  auto request = message.initRoot<wire::Request>();
  request.setId(next_id_++);
  fill(request);
  net::append_frame(out_, message);
  if (!processing_) flush();
}

bool connection::handle_push(std::uint64_t id, wire::Response::Reader response,
                             std::span<const std::byte> payload) {
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return false;
  auto handlers = it->second;
  switch (response.which()) {
    case wire::Response::SUBSCRIPTION_EVENTS: {
      // The batch keeps its own copy of the frame, in a reused buffer.
      auto copy = push_buffers_->copy(payload);
      capnp::FlatArrayMessageReader kept(copy->words(), net::reader_options());
      auto batch = wire_codec::decode_subscription_events(
          kept.getRoot<wire::Response>().getSubscriptionEvents(), std::move(copy));
      if (handlers->events) handlers->events(std::move(batch));
      return true;
    }
    case wire::Response::SUBSCRIPTION_ENDED: {
      subscriptions_.erase(it);
      auto ended = response.getSubscriptionEnded();
      std::optional<engine::error> why;
      if (ended.getFailed()) why = wire_codec::decode_error(ended.getError());
      if (handlers->ended) handlers->ended(std::move(why));
      return true;
    }
    case wire::Response::ERROR:
      subscriptions_.erase(it);
      if (handlers->ended) handlers->ended(wire_codec::decode_error(response.getError()));
      return true;
    default:
      return false;
  }
}

void connection::close() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->close_now({errc::connection_lost, "the connection was closed by the client"});
  });
}

void connection::submit(reply_handler handler, fill_fn fill) {
  asio::dispatch(strand_, [self = shared_from_this(), handler = std::move(handler),
                           fill = std::move(fill)]() mutable {
    self->start_request(handler, fill);
  });
}

void connection::start_request(reply_handler& handler, const fill_fn& fill) {
  if (closed_) {
    const engine::error lost{errc::connection_lost, "the connection is closed"};
    return handler(error_event(&lost));
  }
  const std::uint64_t id = next_id_++;
  const std::size_t start = out_.size();
  {
    capnp::MallocMessageBuilder message(request_scratch_);
    auto request = message.initRoot<wire::Request>();
    request.setId(id);
    const auto epoch = forwarded_epoch_.load(std::memory_order_relaxed);
    if (epoch != 0) request.setForwardedEpoch(epoch);
    fill(request);
    net::append_frame(out_, message);
  }
  const std::size_t frame_bytes = out_.size() - start - net::k_frame_header_bytes;
  if (frame_bytes > server_.max_frame_bytes) {
    out_.resize(start);
    const engine::error too_large{
        errc::frame_too_large, fmt::format("the request takes {} bytes; the node accepts {}",
                                           frame_bytes, server_.max_frame_bytes)};
    return handler(error_event(&too_large));
  }
  pending_.emplace(id, std::move(handler));
  deadlines_.emplace_back(id, std::chrono::steady_clock::now() + options_.request_timeout);
  arm_request_timer();
  if (!processing_) flush();
}

void connection::flush() {
  if (write_active_ || out_.empty() || closed_) return;
  std::swap(out_, writing_);
  write_active_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    asio::bind_executor(strand_, [self = shared_from_this()](
                                                     std::error_code ec, std::size_t) {
                      self->write_active_ = false;
                      self->writing_.clear();
                      if (self->closed_) return;
                      if (ec) {
                        return self->close_now({errc::connection_lost,
                                                "write to the node failed: " + ec.message()});
                      }
                      self->flush();
                    }));
}

void connection::do_read() {
  if (reading_ || closed_) return;
  auto space = in_.prepare(std::max(k_min_read_bytes, need_bytes_));
  reading_ = true;
  socket_.async_read_some(
      asio::buffer(space.data(), space.size()),
      asio::bind_executor(strand_, [self = shared_from_this()](std::error_code ec,
                                                               std::size_t n) {
        self->on_read(ec, n);
      }));
}

void connection::on_read(std::error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    std::string message = ec == asio::error::eof ? "the node closed the connection"
                                                 : "read from the node failed: " + ec.message();
    if (close_reason_) {
      message += fmt::format(" ({}: {})", engine::errc_name(close_reason_->code),
                             close_reason_->message);
    }
    return close_now({errc::connection_lost, std::move(message)});
  }
  in_.commit(n);
  processing_ = true;
  while (!closed_) {
    net::frame_view frame;
    const auto status = net::next_frame(in_.data(), k_max_reply_frame_bytes, frame);
    if (status == net::frame_status::need_more) {
      const auto data = in_.data();
      need_bytes_ = 0;
      if (data.size() >= net::k_frame_header_bytes) {
        std::uint32_t length = 0;
        std::memcpy(&length, data.data(), 4);  // little-endian hosts only (x86-64, arm64)
        need_bytes_ = net::k_frame_header_bytes + length - data.size();
      }
      break;
    }
    if (status != net::frame_status::ok) {
      processing_ = false;
      return close_now(malformed("a reply frame is damaged or too large"));
    }
    handle_frame(frame.payload);
    in_.consume(frame.consumed);
  }
  processing_ = false;
  flush();
  do_read();
}

void connection::handle_frame(std::span<const std::byte> payload) {
  reply_handler handler;
  std::optional<engine::error> connection_error;
  try {
    capnp::FlatArrayMessageReader message(scratch_.copy(payload), net::reader_options());
    auto response = message.getRoot<wire::Response>();
    const auto id = response.getId();
    auto it = pending_.find(id);
    if (it == pending_.end()) {
      if (handle_push(id, response, payload)) return;
      if (response.which() == wire::Response::ERROR) {
        // id 0 (or a request already timed out): the node is about to close.
        close_reason_ = wire_codec::decode_error(response.getError());
        spdlog::debug("client: the node reports {}: {}", engine::errc_name(close_reason_->code),
                      close_reason_->message);
      }
      return;
    }
    handler = std::move(it->second);
    pending_.erase(it);
    while (!deadlines_.empty() && !pending_.contains(deadlines_.front().first)) {
      deadlines_.pop_front();
    }
    reply_event event;
    event.response = &response;
    event.payload = payload;
    handler(event);
  } catch (const kj::Exception& e) {
    connection_error = malformed(e.getDescription().cStr());
  }
  if (connection_error) close_now(*connection_error);
}

void connection::arm_request_timer() {
  if (timer_armed_ || deadlines_.empty() || closed_) return;
  timer_armed_ = true;
  request_timer_.expires_at(deadlines_.front().second);
  request_timer_.async_wait([self = shared_from_this()](std::error_code) {
    self->timer_armed_ = false;
    self->on_request_timer();
  });
}

void connection::on_request_timer() {
  if (closed_) return;
  const auto now = std::chrono::steady_clock::now();
  while (!deadlines_.empty() && deadlines_.front().second <= now) {
    const auto id = deadlines_.front().first;
    deadlines_.pop_front();
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    auto handler = std::move(it->second);
    pending_.erase(it);
    const engine::error timed_out{
        errc::timeout, fmt::format("no reply within {} ms", options_.request_timeout.count())};
    handler(error_event(&timed_out));
    if (closed_) return;
  }
  arm_request_timer();
}

void connection::close_now(engine::error reason) {
  if (closed_) return;
  closed_ = true;
  open_ = false;
  std::error_code ignored;
  resolver_.cancel();
  socket_.close(ignored);
  connect_timer_.cancel();
  request_timer_.cancel();
  if (auto done = std::exchange(connect_done_, nullptr)) {
    pending_.clear();  // the hello handler: `done` is answered here
    done(reason);
  }
  auto pending = std::move(pending_);
  pending_.clear();
  deadlines_.clear();
  const engine::error lost =
      reason.code == errc::connection_lost ? reason : engine::error{errc::connection_lost, reason.message};
  for (auto& [id, handler] : pending) handler(error_event(&lost));
  auto subscriptions = std::move(subscriptions_);
  subscriptions_.clear();
  for (auto& [id, handlers] : subscriptions) {
    if (handlers->ended) handlers->ended(lost);
  }
}

}  // namespace annal::client
