// group_commit: rounds run when a partition waits, and only waiting
// partitions are told; a failed round is reported to them.

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "actors/group_commit.hpp"
#include "engine/node_log.hpp"
#include "tests/actors/node_harness.hpp"
#include "tests/support/fault_injection_file_system.hpp"

namespace annal::testing {
namespace {

constexpr std::uint32_t k_partitions = 4;

// Records the durable notifications, as a partition actor would get them.
class recorder {
 public:
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
  std::set<std::uint32_t> notified() {
    std::lock_guard lock(mu_);
    return notified_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::uint32_t> notified_;  // guarded by mu_
  int ticks_ = 0;                     // guarded by mu_
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

  temp_dir dir_;
  fault_injection_file_system fs_;
  std::unique_ptr<engine::node_log> wal_;
  actors::node_metrics metrics_;
  recorder recorder_;
};

TEST_F(group_commit_test, a_waiting_partition_is_told_after_the_round_that_covers_it) {
  auto commit = make();
  commit->start();
  const auto after = append(100);
  commit->wait_for_sync(partition_id{2});
  ASSERT_TRUE(recorder_.wait_for(2));
  EXPECT_GE(wal_->durable_position(), after);
  EXPECT_FALSE(commit->failed());
  commit->stop();
  // Only the partition that waited was told.
  EXPECT_EQ(recorder_.notified(), (std::set<std::uint32_t>{2}));
  EXPECT_GE(metrics_.sync_rounds.load(), 1u);
  EXPECT_GE(metrics_.sync_seconds.count(), 1u);
}

TEST_F(group_commit_test, rearm_after_the_round_sees_the_position_itself) {
  auto commit = make();
  commit->start();
  append(10);
  commit->wait_for_sync(partition_id{1});
  ASSERT_TRUE(recorder_.wait_for(1));
  // Nothing pending: a re-armed partition is not told again, so the actor
  // must check the durable position after rearm() (it is already there).
  commit->rearm(partition_id{1});
  EXPECT_EQ(wal_->durable_position().value(), wal_->appended_position().value());
  commit->stop();
}

TEST_F(group_commit_test, a_failed_round_is_reported_to_waiting_partitions) {
  auto commit = make();
  commit->start();
  fs_.fail_syncs(std::errc::io_error);
  append(10);
  commit->wait_for_sync(partition_id{3});
  ASSERT_TRUE(recorder_.wait_for(3));
  EXPECT_TRUE(commit->failed());
  ASSERT_TRUE(wal_->failure().has_value());
  EXPECT_EQ(wal_->failure()->code, engine::errc::io_error);
  commit->stop();
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
