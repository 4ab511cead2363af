#include "client/client.hpp"

#include <future>

namespace annal::client {

client::client(private_tag) : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

client::~client() {
  if (connection_) connection_->close();
  work_.reset();
  thread_.join();
}

engine::result<std::unique_ptr<client>> client::connect(client_options options) {
  auto c = std::make_unique<client>(private_tag{});
  std::promise<engine::result<std::shared_ptr<connection>>> promise;
  auto future = promise.get_future();
  connection::connect(c->io_, std::move(options),
                      [&promise](engine::result<std::shared_ptr<connection>> r) {
                        promise.set_value(std::move(r));
                      });
  auto connected = future.get();
  if (!connected) return connected.err();
  c->connection_ = std::move(connected).value();
  return c;
}

template <class T, class Start>
engine::result<T> client::call(Start start) {
  auto promise = std::make_shared<std::promise<engine::result<T>>>();
  auto future = promise->get_future();
  start([promise](engine::result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

engine::result<actors::append_reply> client::append(actors::append_request request) {
  return call<actors::append_reply>(
      [&](auto done) { connection_->append(std::move(request), std::move(done)); });
}

engine::result<engine::read_page> client::read(actors::read_request request) {
  return call<engine::read_page>(
      [&](auto done) { connection_->read(std::move(request), std::move(done)); });
}

engine::result<engine::read_page> client::read_last(std::string stream) {
  return call<engine::read_page>(
      [&](auto done) { connection_->read_last(std::move(stream), std::move(done)); });
}

engine::result<engine::stream_info> client::get_stream_info(std::string stream) {
  return call<engine::stream_info>(
      [&](auto done) { connection_->get_stream_info(std::move(stream), std::move(done)); });
}

engine::result<actors::write_reply> client::set_metadata(std::string stream,
                                                         engine::stream_metadata metadata) {
  return call<actors::write_reply>([&](auto done) {
    connection_->set_metadata(std::move(stream), metadata, std::move(done));
  });
}

engine::result<actors::write_reply> client::delete_stream(std::string stream,
                                                          engine::expected_version expected,
                                                          bool tombstone) {
  return call<actors::write_reply>([&](auto done) {
    connection_->delete_stream(std::move(stream), expected, tombstone, std::move(done));
  });
}

engine::result<actors::write_reply> client::put_snapshot(std::string stream,
                                                         stream_version version,
                                                         std::string payload) {
  return call<actors::write_reply>([&](auto done) {
    connection_->put_snapshot(std::move(stream), version, std::move(payload), std::move(done));
  });
}

engine::result<std::optional<engine::snapshot_read>> client::get_snapshot(std::string stream) {
  return call<std::optional<engine::snapshot_read>>(
      [&](auto done) { connection_->get_snapshot(std::move(stream), std::move(done)); });
}

engine::result<actors::read_all_page> client::read_all(actors::read_all_request request) {
  return call<actors::read_all_page>(
      [&](auto done) { connection_->read_all(std::move(request), std::move(done)); });
}

engine::result<engine::query::query_answer> client::query(std::string text, bool allow_partial,
                                                          std::uint32_t timeout_ms) {
  return call<engine::query::query_answer>([&](auto done) {
    connection_->query(std::move(text), allow_partial, timeout_ms, std::move(done));
  });
}

engine::result<std::vector<actors::partition_stats>> client::stats() {
  return call<std::vector<actors::partition_stats>>(
      [&](auto done) { connection_->stats(std::move(done)); });
}

engine::status client::ping() {
  auto promise = std::make_shared<std::promise<engine::status>>();
  auto future = promise->get_future();
  connection_->ping([promise](engine::status s) { promise->set_value(std::move(s)); });
  return future.get();
}

}  // namespace annal::client
