#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "tests/support/node_process.hpp"
#include "tests/support/temp_dir.hpp"

// A fixture with a real `annal dev` process in a fresh data directory and a
// blocking client connected to it. Header-only.
namespace annal::testing {

// An event with a fresh id (distinct within the test process).
inline engine::event_input event(std::string type, std::string data) {
  static std::uint64_t counter = 0x5eed;
  engine::event_input e;
  ++counter;
  for (int i = 0; i < 8; ++i) {
    e.id[i] = static_cast<std::uint8_t>(counter >> (8 * i));
    e.id[8 + i] = static_cast<std::uint8_t>((counter * 0x9e3779b97f4a7c15ull) >> (8 * i));
  }
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

inline actors::append_request append_of(std::string stream, engine::expected_version expected,
                                        std::vector<engine::event_input> events) {
  actors::append_request r;
  r.stream = std::move(stream);
  r.expected = expected;
  r.events = std::move(events);
  return r;
}

class node_fixture : public ::testing::Test {
 protected:
  void SetUp() override { start_node(); }

  void start_node(std::vector<std::string> extra_args = {}) {
    client_.reset();
    node_.reset();
    node_ = std::make_unique<node_process>(data_.path() + "/data", std::move(extra_args));
    client_ = connect();
  }

  std::unique_ptr<client::client> connect() {
    client::client_options options;
    options.port = node_->binary_port();
    options.client_name = "integration-test";
    auto c = client::client::connect(options);
    if (!c) throw std::runtime_error("connect: " + c.err().message);
    return std::move(c).value();
  }

  temp_dir data_;
  std::unique_ptr<node_process> node_;
  std::unique_ptr<client::client> client_;
};

}  // namespace annal::testing
