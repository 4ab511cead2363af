#include "client/peer_link.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace annal::client {

using engine::errc;

std::shared_ptr<peer_link> peer_link::make(asio::io_context& io, peer_link_options options) {
  return std::make_shared<peer_link>(private_tag{}, io, std::move(options));
}

peer_link::peer_link(private_tag, asio::io_context& io, peer_link_options options)
    : options_(std::move(options)),
      io_(io),
      strand_(asio::make_strand(io)),
      backoff_timer_(strand_),
      backoff_(options_.initial_backoff) {
  if (options_.connection.client_name.empty()) options_.connection.client_name = "annal-peer";
}

engine::error peer_link::unavailable(const std::string& why) const {
  return {errc::node_unavailable,
          fmt::format("node {} at {}:{} cannot be reached: {}", options_.node_id,
                      options_.connection.host, options_.connection.port, why)};
}

void peer_link::close() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->closed_ = true;
    self->backoff_timer_.cancel();
    if (self->connection_) self->connection_->close();
    self->connection_.reset();
    auto queued = std::move(self->queued_);
    self->queued_.clear();
    for (auto& p : queued) p.fail({errc::shutting_down, "the node is stopping"});
  });
}

template <class T, class Send>
void peer_link::forward(actors::reply_fn<T> reply, Send send) {
  auto shared_reply = std::make_shared<actors::reply_fn<T>>(std::move(reply));
  pending request{[shared_reply, send = std::move(send)](connection& c) mutable {
                    send(c, [shared_reply](engine::result<T> r) { (*shared_reply)(std::move(r)); });
                  },
                  [shared_reply](engine::error e) { (*shared_reply)(std::move(e)); }};
  asio::dispatch(strand_, [self = shared_from_this(), request = std::move(request)]() mutable {
    self->submit(std::move(request));
  });
}

void peer_link::submit(pending request) {
  if (closed_) {
    request.fail({errc::shutting_down, "the node is stopping"});
    return;
  }
  if (connection_ && !connection_->is_open()) {
    spdlog::info("peer {}: connection closed; reconnecting", options_.node_id);
    connection_.reset();
  }
  if (connection_) {
    connection_->set_forwarded_epoch(epoch_.load(std::memory_order_relaxed));
    request.send(*connection_);
    return;
  }
  if (backing_off_) {
    request.fail(unavailable(last_failure_));
    return;
  }
  if (queued_.size() >= options_.max_queued) {
    request.fail(unavailable("too many requests waiting for the connection"));
    return;
  }
  queued_.push_back(std::move(request));
  if (!connecting_) start_connect();
}

void peer_link::start_connect() {
  connecting_ = true;
  connection::connect(io_, options_.connection,
                      [self = shared_from_this()](engine::result<std::shared_ptr<connection>> r) {
                        asio::dispatch(self->strand_, [self, r = std::move(r)]() mutable {
                          self->on_connected(std::move(r));
                        });
                      });
}

void peer_link::on_connected(engine::result<std::shared_ptr<connection>> connected) {
  connecting_ = false;
  if (closed_) {
    if (connected) connected.value()->close();
    return;
  }
  if (!connected) {
    last_failure_ = connected.err().message;
    spdlog::warn("peer {}: {}; retrying in {} ms", options_.node_id, last_failure_,
                 backoff_.count());
    auto queued = std::move(queued_);
    queued_.clear();
    for (auto& p : queued) p.fail(unavailable(last_failure_));
    backing_off_ = true;
    backoff_timer_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    backoff_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (!ec) self->backing_off_ = false;
    });
    return;
  }
  connection_ = std::move(connected).value();
  backoff_ = options_.initial_backoff;
  auto queued = std::move(queued_);
  queued_.clear();
  connection_->set_forwarded_epoch(epoch_.load(std::memory_order_relaxed));
  for (auto& p : queued) p.send(*connection_);
}

void peer_link::append(actors::append_request request,
                       actors::reply_fn<actors::append_reply> reply) {
  forward<actors::append_reply>(std::move(reply),
                                [request = std::move(request)](connection& c, auto done) mutable {
                                  c.append(std::move(request), std::move(done));
                                });
}

void peer_link::read(actors::read_request request, actors::reply_fn<engine::read_page> reply) {
  forward<engine::read_page>(std::move(reply),
                             [request = std::move(request)](connection& c, auto done) mutable {
                               c.read(std::move(request), std::move(done));
                             });
}

void peer_link::read_last(std::string stream, actors::reply_fn<engine::read_page> reply) {
  forward<engine::read_page>(std::move(reply),
                             [stream = std::move(stream)](connection& c, auto done) mutable {
                               c.read_last(std::move(stream), std::move(done));
                             });
}

void peer_link::get_stream_info(std::string stream, actors::reply_fn<engine::stream_info> reply) {
  forward<engine::stream_info>(std::move(reply),
                               [stream = std::move(stream)](connection& c, auto done) mutable {
                                 c.get_stream_info(std::move(stream), std::move(done));
                               });
}

void peer_link::set_metadata(std::string stream, engine::stream_metadata metadata,
                             actors::reply_fn<actors::write_reply> reply) {
  forward<actors::write_reply>(
      std::move(reply), [stream = std::move(stream), metadata = std::move(metadata)](
                            connection& c, auto done) mutable {
        c.set_metadata(std::move(stream), std::move(metadata), std::move(done));
      });
}

void peer_link::delete_stream(std::string stream, engine::expected_version expected, bool tombstone,
                              actors::reply_fn<actors::write_reply> reply) {
  forward<actors::write_reply>(std::move(reply), [stream = std::move(stream), expected, tombstone](
                                                     connection& c, auto done) mutable {
    c.delete_stream(std::move(stream), expected, tombstone, std::move(done));
  });
}

void peer_link::put_snapshot(std::string stream, stream_version version, std::string payload,
                             actors::reply_fn<actors::write_reply> reply) {
  forward<actors::write_reply>(
      std::move(reply), [stream = std::move(stream), version, payload = std::move(payload)](
                            connection& c, auto done) mutable {
        c.put_snapshot(std::move(stream), version, std::move(payload), std::move(done));
      });
}

void peer_link::get_snapshot(std::string stream,
                             actors::reply_fn<std::optional<engine::snapshot_read>> reply) {
  forward<std::optional<engine::snapshot_read>>(
      std::move(reply), [stream = std::move(stream)](connection& c, auto done) mutable {
        c.get_snapshot(std::move(stream), std::move(done));
      });
}

void peer_link::read_all(actors::read_all_request request,
                         actors::reply_fn<actors::read_all_page> reply) {
  forward<actors::read_all_page>(std::move(reply),
                                 [request = std::move(request)](connection& c, auto done) mutable {
                                   c.read_all(std::move(request), std::move(done));
                                 });
}

void peer_link::query(actors::query_request request,
                      actors::reply_fn<engine::query::partial_result> reply) {
  forward<engine::query::partial_result>(
      std::move(reply), [request = std::move(request)](connection& c, auto done) mutable {
        c.query_partial(std::move(request), std::move(done));
      });
}

void peer_link::stats(actors::reply_fn<std::vector<actors::partition_stats>> reply) {
  forward<std::vector<actors::partition_stats>>(
      std::move(reply), [](connection& c, auto done) { c.stats(std::move(done)); });
}

void peer_link::ship_log(partition_id p, lsn from, std::size_t max_bytes,
                         actors::reply_fn<engine::shipped_batch> reply) {
  forward<engine::shipped_batch>(std::move(reply), [=](connection& c, auto done) mutable {
    c.ship_log(p, from, max_bytes, std::move(done));
  });
}

void peer_link::seal(partition_id p, std::chrono::milliseconds hold_for,
                     actors::reply_fn<lsn> reply) {
  forward<lsn>(std::move(reply), [=](connection& c, auto done) mutable {
    c.seal_partition(p, hold_for, std::move(done));
  });
}

void peer_link::unseal(partition_id p, actors::reply_fn<lsn> reply) {
  forward<lsn>(std::move(reply),
               [=](connection& c, auto done) mutable { c.unseal_partition(p, std::move(done)); });
}

}  // namespace annal::client
