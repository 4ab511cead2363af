#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/metrics.hpp"
#include "engine/errors.hpp"
#include "engine/file_system.hpp"
#include "engine/partition.hpp"

namespace annal::actors {

// Runs partition::checkpoint() (blocking: fsyncs) on one dedicated thread, one
// partition at a time, never on a CAF worker.
//
// Handshake, so that a partition actor stops serving only while its own
// checkpoint runs (not while it waits in the queue behind others):
// 1. the actor, seeing checkpoint_due(), calls request(p, paths) with what
//    partition::prepare_checkpoint() returned, and keeps serving;
// 2. when p's turn comes, the thread writes those files back
//    (file_system::write_back: the bulk of the checkpoint's segment sync,
//    while the actor still serves) and calls go(p) (the actor gets a message);
// 3. the actor calls hand_over(p, partition) and then accepts only the
//    checkpoint_done message, leaving the rest in its mailbox;
// 4. the thread checkpoints and calls done(p, failure).
// The actor must answer every go(p) with hand_over(), or stop() hangs.
//
// Owned by node; start() and stop() from the owner, the rest from any thread.
class checkpointer {
 public:
  // Called on the checkpoint thread; must not block.
  using go_fn = std::function<void(partition_id)>;
  using done_fn = std::function<void(partition_id, std::optional<engine::error>)>;

  checkpointer(engine::file_system& fs, node_metrics& metrics, go_fn go, done_fn done);
  ~checkpointer();  // stop()

  checkpointer(const checkpointer&) = delete;
  checkpointer& operator=(const checkpointer&) = delete;

  void start();
  // Finishes the checkpoint in progress, drops the queued requests and joins
  // the thread. Idempotent.
  void stop();

  // Queues p, with the segment files to write back before its turn.
  // Requires: p has no request outstanding (the actor tracks that).
  void request(partition_id p, std::vector<std::string> write_back);
  // The answer to go(p). Requires: the caller owns `part` and does not touch
  // it until done(p) is called.
  void hand_over(partition_id p, engine::partition* part);

 private:
  void run();

  struct queued {
    partition_id partition;
    std::vector<std::string> write_back;
  };

  engine::file_system& fs_;
  node_metrics& metrics_;
  const go_fn go_;
  const done_fn done_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued> queue_;              // guarded by mu_
  engine::partition* handed_ = nullptr;   // guarded by mu_
  bool stopping_ = false;                 // guarded by mu_
  std::thread thread_;
};

}  // namespace annal::actors
