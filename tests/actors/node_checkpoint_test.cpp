// Background checkpoints under load: they happen (small checkpoint_bytes),
// lose nothing, and a reopened store replays only what came after them.

#include <gtest/gtest.h>

#include <thread>

#include "engine/store.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/event_factory.hpp"

namespace annal::testing {
namespace {

using engine::expected_version;

class node_checkpoint_test : public ::testing::TestWithParam<engine::fsync_mode> {};

TEST_P(node_checkpoint_test, checkpoints_under_load_lose_nothing) {
  temp_dir dir;
  auto options = small_node_options(dir, GetParam());
  options.partition.checkpoint_bytes = 16u << 10;
  constexpr int k_threads = 3;
  constexpr int k_streams = 12;
  const std::string data(200, 'd');

  auto node = start_node(options);
  std::atomic<bool> running{true};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<std::uint64_t> acknowledged(k_streams, 0);  // events per stream; guarded by mu
  std::vector<std::thread> threads;
  // Each thread keeps a window of appends in flight until told to stop and
  // waits for its last replies.
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      std::uint64_t sent = 0;
      auto replies = std::make_shared<std::atomic<std::uint64_t>>(0);
      while (running.load()) {
        const int window = 16;
        reply_counter batch(window);
        for (int i = 0; i < window; ++i, ++sent) {
          const int s = static_cast<int>((sent * k_threads + t) % k_streams);
          std::vector<engine::event_input> events{
              engine::event_input{{}, "load", data, {}}};
          node->handler().append(
              append_of("ckpt-" + std::to_string(s), expected_version::any(), std::move(events)),
              [&, s](engine::result<actors::append_reply> r) {
                if (r) {
                  std::lock_guard lock(mu);
                  ++acknowledged[s];
                } else {
                  failures.fetch_add(1);
                }
                batch.arrived();
              });
        }
        if (!batch.wait()) {
          failures.fetch_add(1000);
          return;
        }
      }
    });
  }
  // Load until several background checkpoints ran (deadline: the reply one).
  const auto deadline = std::chrono::steady_clock::now() + k_reply_deadline;
  while (node->metrics().checkpoints.load() < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling, not synchronization
  }
  running = false;
  for (auto& t : threads) t.join();
  EXPECT_GE(node->metrics().checkpoints.load(), 8u);
  EXPECT_GE(node->metrics().checkpoint_seconds.count(), 8u);
  EXPECT_GT(node->metrics().checkpoint_seconds.sum(), 0.0);
  EXPECT_EQ(failures.load(), 0);

  // Reads during the node's life see every acknowledged event.
  for (int s = 0; s < k_streams; ++s) {
    auto page = await_reply<engine::read_page>([&](auto reply) {
      node->handler().read(actors::read_request{"ckpt-" + std::to_string(s), stream_version{0},
                                                false, 1000000, engine::read_direction::forward},
                           std::move(reply));
    });
    ASSERT_TRUE(page.ok()) << page.err().message;
    EXPECT_EQ(page->events.size(), acknowledged[s]) << "stream " << s;
  }
  node->stop();

  engine::store_options so;
  so.directory = options.data_dir;
  so.partition = options.partition;
  auto st = std::move(engine::store::open(so)).value();
  EXPECT_EQ(st->recovery().replayed_records, 0u);
  for (int s = 0; s < k_streams; ++s) {
    const std::string stream = "ckpt-" + std::to_string(s);
    auto info = st->get(st->partition_for(stream)).value()->get_stream_info(stream);
    ASSERT_TRUE(info.ok());
    ASSERT_TRUE(info->last_version.has_value());
    EXPECT_EQ(info->last_version->value() + 1, acknowledged[s]) << stream;
  }
}

INSTANTIATE_TEST_SUITE_P(fsync, node_checkpoint_test,
                         ::testing::Values(engine::fsync_mode::always, engine::fsync_mode::none),
                         [](const auto& info) {
                           return std::string(info.param == engine::fsync_mode::always ? "always"
                                                                                       : "none");
                         });

}  // namespace
}  // namespace annal::testing
