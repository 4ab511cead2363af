#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "actors/metrics.hpp"
#include "net/binary_server.hpp"
#include "tests/support/eventually.hpp"
#include "net/framing.hpp"
#include "schema/protocol.capnp.h"
#include "tests/support/store_handler.hpp"
#include "tests/support/temp_dir.hpp"

// Test helpers for the binary protocol: a server over a real store on
// 127.0.0.1 (port 0) with its own io threads, a raw blocking peer that sends
// hand-made bytes, and a handler that holds replies back. Header-only.
namespace annal::testing {

using namespace std::chrono_literals;


// Wraps a handler; while `hold` is set, replies are kept until release().
// Thread-safe.
class held_handler final : public actors::request_handler {
 public:
  explicit held_handler(actors::request_handler& inner) : inner_(inner) {}

  void hold(bool on) {
    std::lock_guard lock(mu_);
    hold_ = on;
  }
  std::size_t held() const {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // Delivers held replies, newest first when `reverse`, on the calling thread.
  void release(bool reverse = false) {
    std::vector<std::function<void()>> replies;
    {
      std::lock_guard lock(mu_);
      replies.swap(held_);
    }
    if (reverse) std::reverse(replies.begin(), replies.end());
    for (auto& reply : replies) reply();
  }

  void append(actors::append_request r, actors::reply_fn<actors::append_reply> f) override {
    inner_.append(std::move(r), wrap(std::move(f)));
  }
  // The next read() first delivers the held replies, on its caller's thread
  // (for a reply that must arrive while the server handles a request).
  void release_before_next_read() {
    std::lock_guard lock(mu_);
    release_before_read_ = true;
  }

  void read(actors::read_request r, actors::reply_fn<engine::read_page> f) override {
    bool release_first = false;
    {
      std::lock_guard lock(mu_);
      release_first = std::exchange(release_before_read_, false);
    }
    if (release_first) release();
    inner_.read(std::move(r), wrap(std::move(f)));
  }
  void read_last(std::string s, actors::reply_fn<engine::read_page> f) override {
    inner_.read_last(std::move(s), wrap(std::move(f)));
  }
  void get_stream_info(std::string s, actors::reply_fn<engine::stream_info> f) override {
    inner_.get_stream_info(std::move(s), wrap(std::move(f)));
  }
  void set_metadata(std::string s, engine::stream_metadata m,
                    actors::reply_fn<actors::write_reply> f) override {
    inner_.set_metadata(std::move(s), m, wrap(std::move(f)));
  }
  void delete_stream(std::string s, engine::expected_version e, bool t,
                     actors::reply_fn<actors::write_reply> f) override {
    inner_.delete_stream(std::move(s), e, t, wrap(std::move(f)));
  }
  void put_snapshot(std::string s, stream_version v, std::string p,
                    actors::reply_fn<actors::write_reply> f) override {
    inner_.put_snapshot(std::move(s), v, std::move(p), wrap(std::move(f)));
  }
  void get_snapshot(std::string s,
                    actors::reply_fn<std::optional<engine::snapshot_read>> f) override {
    inner_.get_snapshot(std::move(s), wrap(std::move(f)));
  }
  void read_all(actors::read_all_request r, actors::reply_fn<actors::read_all_page> f) override {
    inner_.read_all(std::move(r), wrap(std::move(f)));
  }
  void stats(actors::reply_fn<std::vector<actors::partition_stats>> f) override {
    inner_.stats(wrap(std::move(f)));
  }
  void query(actors::query_request r,
             actors::reply_fn<engine::query::partial_result> f) override {
    {
      std::lock_guard lock(mu_);
      last_query_cancel_ = r.cancel;
    }
    inner_.query(std::move(r), wrap(std::move(f)));
  }
  // The cancel flag of the last query received.
  actors::query_cancel last_query_cancel() const {
    std::lock_guard lock(mu_);
    return last_query_cancel_;
  }

 private:
  template <class T>
  actors::reply_fn<T> wrap(actors::reply_fn<T> f) {
    return [this, f = std::move(f)](engine::result<T> r) {
      std::unique_lock lock(mu_);
      if (!hold_) {
        lock.unlock();
        return f(std::move(r));
      }
      // Shared: std::function needs a copyable callable; results may be move-only.
      auto held = std::make_shared<engine::result<T>>(std::move(r));
      held_.push_back([f, held] { f(std::move(*held)); });
    };
  }

  actors::request_handler& inner_;
  mutable std::mutex mu_;
  bool hold_ = false;                         // guarded by mu_
  bool release_before_read_ = false;          // guarded by mu_
  actors::query_cancel last_query_cancel_;    // guarded by mu_
  std::vector<std::function<void()>> held_;  // guarded by mu_
};

// A binary_server over a store_handler (wrapped in a held_handler) on
// 127.0.0.1, run by `threads` io threads.
class binary_test_server {
 public:
  explicit binary_test_server(net::binary_server_options options = {}, int threads = 1)
      : store_(dir_.path()), held_(store_), work_(asio::make_work_guard(io_)) {
    options.partition_count = 4;
    server_ = std::make_unique<net::binary_server>(io_, held_, metrics_, options);
    auto bound = server_->listen("127.0.0.1", 0);
    if (!bound) throw std::runtime_error(bound.err().message);
    port_ = bound->port();
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~binary_test_server() { shutdown(); }

  // Stops the server and the io threads. Idempotent.
  void shutdown() {
    if (threads_.empty()) return;
    server_->stop();
    work_.reset();
    held_.release();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  std::uint16_t port() const { return port_; }
  net::binary_server& server() { return *server_; }
  held_handler& handler() { return held_; }
  store_handler& store() { return store_; }
  actors::node_metrics& metrics() { return metrics_; }

 private:
  temp_dir dir_;
  store_handler store_;
  held_handler held_;
  actors::node_metrics metrics_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<net::binary_server> server_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

// A decoded response, owning its message.
struct raw_response {
  kj::Array<capnp::word> words;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  wire::Response::Reader get() { return reader->getRoot<wire::Response>(); }
  std::string error_code() {
    auto r = get();
    return r.which() == wire::Response::ERROR ? std::string(r.getError().getCode().cStr())
                                              : std::string("<not an error>");
  }
};

// A blocking TCP peer that speaks raw bytes. Every wait has a deadline.
class raw_peer {
 public:
  explicit raw_peer(std::uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  void send(std::span<const std::byte> bytes) {
    asio::error_code ec;  // the node may have closed already: the test checks replies
    asio::write(socket_, asio::buffer(bytes.data(), bytes.size()), ec);
  }
  void send(capnp::MessageBuilder& message) { send(net::make_frame(message)); }
  void send_hello(std::uint32_t version = wire::PROTOCOL_VERSION, std::uint64_t id = 1) {
    capnp::MallocMessageBuilder message;
    auto request = message.initRoot<wire::Request>();
    request.setId(id);
    request.initHello().setProtocolVersion(version);
    send(message);
  }
  // Sends hello and checks the HelloReply.
  void handshake() {
    send_hello();
    auto reply = receive();
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->get().which(), wire::Response::HELLO);
  }
  void shutdown_send() {
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
  void close() {
    asio::error_code ignored;
    socket_.close(ignored);
  }

  // The next response frame; nullopt on EOF, error or deadline.
  std::optional<raw_response> receive(std::chrono::milliseconds timeout = 10s) {
    std::byte header[4];
    if (!read_exact(header, 4, timeout)) return std::nullopt;
    std::uint32_t length = 0;
    std::memcpy(&length, header, 4);
    if (length == 0 || length % 8 != 0 || length > (64u << 20)) return std::nullopt;
    raw_response response;
    response.words = kj::heapArray<capnp::word>(length / 8);
    if (!read_exact(reinterpret_cast<std::byte*>(response.words.begin()), length, timeout)) {
      return std::nullopt;
    }
    response.reader = std::make_unique<capnp::FlatArrayMessageReader>(response.words.asPtr());
    return response;
  }

  // Whether the node closes the connection (EOF, without a reset) within the
  // deadline, discarding anything still sent.
  bool closed_cleanly(std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::byte sink[4096];
    while (true) {
      if (!wait_readable(deadline)) return false;
      asio::error_code ec;
      socket_.read_some(asio::buffer(sink), ec);
      if (ec == asio::error::eof) return true;
      if (ec) return false;
    }
  }

 private:
  bool wait_readable(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fd{socket_.native_handle(), POLLIN, 0};
    return ::poll(&fd, 1, static_cast<int>(left.count())) > 0;
  }

  bool read_exact(std::byte* out, std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t got = 0;
    while (got < n) {
      if (!wait_readable(deadline)) return false;
      asio::error_code ec;
      got += socket_.read_some(asio::buffer(out + got, n - got), ec);
      if (ec) return false;
    }
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

}  // namespace annal::testing
