#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/metrics.hpp"
#include "engine/node_log.hpp"
#include "engine/types.hpp"

namespace annal::actors {

// Node-wide group commit: sync threads run node_log::sync() rounds whenever
// a partition actor has appended (never spinning), and after each round tell
// only the partitions that wait for durability (one flag per partition).
// Rounds of several threads overlap (see node_log::sync).
//
// Protocol with a partition actor, which keeps the waiting replies itself:
// - after appending to the node log a write it holds a reply for, the actor
//   calls wait_for_sync(p);
// - on `durable(p)` it releases what node_log::durable_position() covers; if
//   replies remain it calls rearm(p) and then reads durable_position() and
//   failed() once more (a round may have ended between the two).
// Either a later round sees the flag, or the actor sees that round's
// position: no reply is left waiting.
//
// Owned by node; start() and stop() from the owner, the rest from any thread.
class group_commit {
 public:
  // Called on a sync thread; must not block (it sends an actor message).
  using partition_fn = std::function<void(partition_id)>;
  using tick_fn = std::function<void()>;

  struct options {
    std::size_t threads = 2;
    engine::fsync_mode mode = engine::fsync_mode::always;
    std::chrono::milliseconds interval{100};  // fsync=interval: idle rounds this often
    std::uint64_t tick_bytes = 64u << 20;     // tick() each time the node log grew this much
  };

  // `durable` is called for each waiting partition after a round (also when
  // the round failed); `tick` when the node log grew by options.tick_bytes,
  // so that idle partitions poll partition::checkpoint_due().
  group_commit(engine::node_log& wal, std::uint32_t partition_count, options options,
               node_metrics& metrics, partition_fn durable, tick_fn tick);
  ~group_commit();  // stop()

  group_commit(const group_commit&) = delete;
  group_commit& operator=(const group_commit&) = delete;

  void start();
  // Joins the sync threads (a round in progress finishes first). Idempotent.
  void stop();

  // Partition `p` appended to the node log and waits for a round.
  void wait_for_sync(partition_id p) {
    auto& flag = waiting_[p.value()].value;
    if (!flag.load()) flag.store(true);
    wake();
  }
  // Partition `p` still waits after a notification. The caller then checks
  // durable_position() and failed() again.
  void rearm(partition_id p) {
    waiting_[p.value()].value.store(true);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  // A round failed: the node log refuses every write from now on.
  bool failed() const { return failed_.load(); }

 private:
  struct alignas(64) padded_flag {
    std::atomic<bool> value{false};
  };

  void wake() {
    if (!pending_.load() && !pending_.exchange(true)) {
      { std::lock_guard lock(mu_); }
      cv_.notify_one();
    }
  }
  void run();
  void round();

  engine::node_log& wal_;
  const options options_;
  node_metrics& metrics_;
  const partition_fn durable_;
  const tick_fn tick_;

  std::unique_ptr<padded_flag[]> waiting_;  // one per partition
  const std::uint32_t partition_count_;
  alignas(64) std::atomic<bool> pending_{false};  // appended since the last round began
  alignas(64) std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> last_tick_{0};  // node-log position of the last tick

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace annal::actors
