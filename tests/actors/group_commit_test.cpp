// group_commit: rounds run when a partition waits; the sync thread answers
// the held writes a round covers, in write order, and fails them after a
// failed round; only listening partitions are told.

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "actors/group_commit.hpp"
#include "engine/node_log.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/fault_injection_file_system.hpp"

namespace annal::testing {
namespace {

constexpr std::uint32_t k_partitions = 4;

// Records the durable notifications, as a partition actor would get them,
// and the replies the sync threads gave, in the order they came.
class recorder {
 public:
  void reply(std::uint64_t tag, const engine::result<actors::write_reply>& r) {
    std::lock_guard lock(mu_);
    tags_.push_back(tag);
    if (!r) errors_.push_back(r.err().code);
    cv_.notify_all();
  }
  void durable(partition_id p) {
    std::lock_guard lock(mu_);
    notified_.insert(p.value());
    cv_.notify_all();
  }
  void tick() {
    std::lock_guard lock(mu_);
    ++ticks_;
    cv_.notify_all();
  }
  bool wait_for(std::uint32_t p) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, k_reply_deadline, [&] { return notified_.count(p) > 0; });
  }
  bool wait_for_tick() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, k_reply_deadline, [&] { return ticks_ > 0; });
  }
  bool wait_for_replies(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, k_reply_deadline, [&] { return tags_.size() >= n; });
  }
  std::set<std::uint32_t> notified() {
    std::lock_guard lock(mu_);
    return notified_;
  }
  std::vector<std::uint64_t> tags() {
    std::lock_guard lock(mu_);
    return tags_;
  }
  std::vector<engine::errc> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::uint32_t> notified_;   // guarded by mu_
  int ticks_ = 0;                      // guarded by mu_
  std::vector<std::uint64_t> tags_;    // guarded by mu_
  std::vector<engine::errc> errors_;   // guarded by mu_
};

class group_commit_test : public ::testing::Test {
 protected:
  group_commit_test() : fs_(engine::posix_file_system()) {
    engine::node_log_options o;
    o.mode = engine::fsync_mode::always;
    wal_ = std::move(engine::node_log::open(fs_, dir_.path(), o, {}, node_log_position{0},
                                            k_partitions))
               .value();
  }

  std::unique_ptr<actors::group_commit> make(std::uint64_t tick_bytes = 1u << 30) {
    actors::group_commit::options o;
    o.tick_bytes = tick_bytes;
    return std::make_unique<actors::group_commit>(
        *wal_, k_partitions, o, metrics_, [this](partition_id p) { recorder_.durable(p); },
        [this] { recorder_.tick(); });
  }

  node_log_position append(std::size_t bytes) {
    std::vector<std::byte> frame(bytes, std::byte{7});
    return wal_->append(frame).value();
  }

  // Holds a write of `after` for partition `p` whose reply is recorded, then
  // waits for a round as a partition actor does.
  void hold(actors::group_commit& commit, std::uint32_t p, node_log_position after,
            std::uint64_t tag) {
    auto reply = [this, tag](engine::result<actors::write_reply> r) { recorder_.reply(tag, r); };
    actors::durable_acks::held_write write{reply, actors::write_reply{lsn{tag}, partition_id{p}}};
    const bool held =
        commit.acks(partition_id{p}).hold(after, std::move(write), wal_->durable_position());
    if (held) commit.wait_for_sync(partition_id{p});
  }

  temp_dir dir_;
  fault_injection_file_system fs_;
  std::unique_ptr<engine::node_log> wal_;
  actors::node_metrics metrics_;
  recorder recorder_;
};

TEST_F(group_commit_test, the_round_that_covers_a_held_write_answers_it) {
  auto commit = make();
  commit->start();
  const auto after = append(100);
  hold(*commit, 2, after, 1);
  ASSERT_TRUE(recorder_.wait_for_replies(1));
  EXPECT_GE(wal_->durable_position(), after);
  EXPECT_EQ(recorder_.tags(), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(recorder_.errors().empty());
  EXPECT_TRUE(commit->acks(partition_id{2}).empty());
  EXPECT_FALSE(commit->failed());
  commit->stop();
  // The partition did not listen: it was not told.
  EXPECT_TRUE(recorder_.notified().empty());
  EXPECT_GE(metrics_.sync_rounds.load(), 1u);
  EXPECT_GE(metrics_.sync_seconds.count(), 1u);
}

TEST_F(group_commit_test, only_a_listening_partition_is_told_after_its_release) {
  auto commit = make();
  commit->start();
  commit->acks(partition_id{1}).listen(true);
  hold(*commit, 1, append(10), 1);
  hold(*commit, 3, append(10), 2);
  ASSERT_TRUE(recorder_.wait_for(1));
  ASSERT_TRUE(recorder_.wait_for_replies(2));
  commit->stop();
  EXPECT_EQ(recorder_.notified(), (std::set<std::uint32_t>{1}));
}

TEST_F(group_commit_test, held_writes_are_answered_in_write_order) {
  auto commit = make();
  const auto first = append(10);
  const auto second = append(10);
  const auto third = append(10);
  // Held before any round: the first round covers all three.
  hold(*commit, 0, first, 1);
  hold(*commit, 0, second, 2);
  hold(*commit, 0, third, 3);
  commit->start();
  ASSERT_TRUE(recorder_.wait_for_replies(3));
  commit->stop();
  EXPECT_EQ(recorder_.tags(), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(group_commit_test, a_failed_round_fails_the_held_writes_with_the_node_logs_error) {
  auto commit = make();
  commit->acks(partition_id{3}).listen(true);
  commit->start();
  fs_.fail_syncs(std::errc::io_error);
  hold(*commit, 3, append(10), 1);
  ASSERT_TRUE(recorder_.wait_for_replies(1));
  ASSERT_TRUE(recorder_.wait_for(3));
  EXPECT_TRUE(commit->failed());
  EXPECT_EQ(recorder_.errors(), (std::vector<engine::errc>{engine::errc::io_error}));
  ASSERT_TRUE(wal_->failure().has_value());
  EXPECT_EQ(wal_->failure()->code, engine::errc::io_error);
  commit->stop();
}

// Writes held from several threads while two sync threads overlap rounds:
// each is answered exactly once, none is left waiting.
TEST_F(group_commit_test, concurrent_writes_are_each_answered_once) {
  actors::group_commit::options o;
  o.threads = 2;
  auto commit = std::make_unique<actors::group_commit>(
      *wal_, k_partitions, o, metrics_, [this](partition_id p) { recorder_.durable(p); },
      [] {});
  commit->start();
  constexpr std::uint64_t k_per_thread = 500;
  std::vector<std::thread> writers;
  for (std::uint32_t t = 0; t < k_partitions; ++t) {
    writers.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < k_per_thread; ++i) {
        hold(*commit, t, append(10), t * k_per_thread + i);
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(recorder_.wait_for_replies(k_partitions * k_per_thread));
  commit->stop();
  auto tags = recorder_.tags();
  std::sort(tags.begin(), tags.end());
  ASSERT_EQ(tags.size(), k_partitions * k_per_thread);
  for (std::uint64_t i = 0; i < tags.size(); ++i) ASSERT_EQ(tags[i], i);
  EXPECT_TRUE(recorder_.errors().empty());
}

TEST_F(group_commit_test, the_node_log_growing_by_tick_bytes_ticks) {
  auto commit = make(/*tick_bytes=*/1000);
  commit->start();
  append(1500);
  commit->wait_for_sync(partition_id{0});
  ASSERT_TRUE(recorder_.wait_for_tick());
  commit->stop();
}

}  // namespace
}  // namespace annal::testing
