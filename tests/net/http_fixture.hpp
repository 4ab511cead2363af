#pragma once

#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/metrics.hpp"
#include "net/http_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/store_handler.hpp"
#include "tests/support/temp_dir.hpp"

// An http_server on 127.0.0.1:<free port> over a store_handler (a real store
// in a temp dir), its io_context run by two threads, and a client. Header-only.
namespace annal::testing {

class http_fixture : public ::testing::Test {
 protected:
  // Small limits so that the limit tests stay small.
  static net::http_server_options test_options() {
    net::http_server_options options;
    options.node_id = "test-node";
    options.max_body_bytes = 64 * 1024;
    options.max_batch_events = 50;
    options.default_page_size = 5;
    options.max_page_size = 20;
    return options;
  }

  // The server's options; a test class may change test_options().
  virtual net::http_server_options options() const { return test_options(); }

  void SetUp() override {
    handler_ = std::make_unique<store_handler>(dir_.path());
    server_ = std::make_unique<net::http_server>(io_, *handler_, metrics_, options());
    auto bound = server_->listen("127.0.0.1", 0);
    ASSERT_TRUE(bound.ok()) << bound.err().message;
    endpoint_ = *bound;
    ASSERT_NE(endpoint_.port(), 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    client_.emplace(endpoint_);
  }

  void TearDown() override {
    client_.reset();
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }

  // The body of a reply parsed as JSON (a test failure if it is not JSON).
  static nlohmann::json body(const http_reply& reply) {
    auto doc = nlohmann::json::parse(reply.body, nullptr, false);
    EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << reply.body;
    return doc;
  }

  // The error code of an error reply.
  static std::string error_code(const http_reply& reply) {
    const auto doc = body(reply);
    if (!doc.contains("error")) return "<no error: " + reply.body + ">";
    return doc["error"]["code"].get<std::string>();
  }

  // Appends `count` JSON events {"n": i} of type "t" to `stream`.
  http_reply append_numbers(const std::string& stream, int first, int count,
                            const std::string& expected = "\"any\"") {
    nlohmann::json events = nlohmann::json::array();
    for (int i = first; i < first + count; ++i) {
      events.push_back({{"type", "t"}, {"data", {{"n", i}}}});
    }
    const std::string text =
        R"({"expectedVersion":)" + expected + R"(,"events":)" + events.dump() + "}";
    return client_->post("/streams/" + stream, text);
  }

  temp_dir dir_;
  actors::node_metrics metrics_;
  std::unique_ptr<store_handler> handler_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<net::http_server> server_;
  asio::ip::tcp::endpoint endpoint_;
  std::vector<std::thread> threads_;
  std::optional<http_client> client_;
};

}  // namespace annal::testing
