// SIGTERM stops a node within 2 s, with every acknowledged append durable.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "tests/integration/node_fixture.hpp"
#include "tests/integration/write_load.hpp"

namespace annal::testing {
namespace {

class shutdown_test : public node_fixture {};

TEST_F(shutdown_test, sigterm_under_load_stops_within_2_s_and_keeps_every_ack) {
  write_load load;
  load.start(node_->binary_port(), 4, 7);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (load.acknowledged() < 300 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(load.acknowledged(), 300u);
  client_.reset();

  std::chrono::milliseconds took{};
  const int status = node_->terminate(std::chrono::seconds(30), &took);
  load.join();
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << node_->output();
  RecordProperty("stop_ms", static_cast<int>(took.count()));
  EXPECT_LE(took.count(), 2000) << "stop took " << took.count() << " ms";

  start_node();
  EXPECT_GE(load.verify(*client_), load.acknowledged());
}

TEST_F(shutdown_test, requests_after_sigterm_fail_cleanly_or_succeed) {
  ASSERT_TRUE(client_->append(
      append_of("late-1", engine::expected_version::any(), {event("A", "1")})));
  std::chrono::milliseconds took{};
  const int status = node_->terminate(std::chrono::seconds(30), &took);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << node_->output();
  EXPECT_LE(took.count(), 2000);
  // The old connection is gone: a request gets a typed error, not a hang.
  auto r = client_->append(append_of("late-1", engine::expected_version::any(), {event("A", "2")}));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.err().code == engine::errc::connection_lost ||
              r.err().code == engine::errc::shutting_down)
      << engine::errc_name(r.err().code);
}

}  // namespace
}  // namespace annal::testing
