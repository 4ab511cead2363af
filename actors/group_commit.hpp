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

#include "actors/durable_acks.hpp"
#include "actors/metrics.hpp"
#include "engine/node_log.hpp"
#include "engine/types.hpp"

namespace annal::actors {

// Node-wide group commit: sync threads run node_log::sync() rounds whenever
// a partition actor has appended (never spinning), and after each round
// answer the writes it made durable, on the sync thread, for only the
// partitions that wait (one flag per partition). Rounds of several threads
// overlap (see node_log::sync).
//
// Protocol with a partition actor:
// - after appending to the node log a write it holds a reply for (in
//   acks(p)), the actor calls wait_for_sync(p);
// - after a round, the sync thread releases what durable_position() covers;
//   if replies remain it sets the flag again and then reads
//   durable_position() and failed() once more (a round of another thread may
//   have ended between the two). Either a later round sees the flag, or this
//   thread sees that round's position: no reply is left waiting.
// - after a failed round, the writes not yet durable fail with the node
//   log's error;
// - a partition that listens (durable_acks::listen) then gets `durable(p)`.
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

  // `durable` is called after a round for each waiting partition that
  // listens (also when the round failed); `tick` when the node log grew by
  // options.tick_bytes, so that idle partitions poll
  // partition::checkpoint_due().
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
    auto& flag = partitions_[p.value()]->waiting;
    if (!flag.load()) flag.store(true);
    wake();
  }
  // The writes of partition `p` that wait for durability.
  durable_acks& acks(partition_id p) { return partitions_[p.value()]->acks; }
  // A round failed: the node log refuses every write from now on.
  bool failed() const { return failed_.load(); }
  // What the writes a failed round did not cover fail with.
  engine::error failure() const;

 private:
  // A partition's state here; aligned so that partitions share no cache line.
  struct alignas(64) partition_slot {
    explicit partition_slot(node_metrics& metrics) : acks(metrics) {}
    std::atomic<bool> waiting{false};  // has writes that wait for a round
    durable_acks acks;
  };

  void wake() {
    if (!pending_.load() && !pending_.exchange(true)) {
      { std::lock_guard lock(mu_); }
      cv_.notify_one();
    }
  }
  void run();
  void round();
  // Answers what the node log made durable for partition `p`.
  void release(partition_id p);

  engine::node_log& wal_;
  const options options_;
  node_metrics& metrics_;
  const partition_fn durable_;
  const tick_fn tick_;

  std::vector<std::unique_ptr<partition_slot>> partitions_;
  alignas(64) std::atomic<bool> pending_{false};  // appended since the last round began
  alignas(64) std::atomic<bool> failed_{false};
  std::atomic<std::uint64_t> last_tick_{0};  // node-log position of the last tick

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace annal::actors
