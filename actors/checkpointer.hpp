#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "actors/metrics.hpp"
#include "engine/checkpoint_job.hpp"
#include "engine/errors.hpp"
#include "engine/partition.hpp"

namespace annal::actors {

// Takes partition checkpoints on one dedicated thread, one at a time, never
// on a CAF worker: the encoding (partition::begin_checkpoint) and the
// blocking write (engine::checkpoint_job::write: fsyncs).
//
// Handshake, so that a partition waits only while its checkpoint is encoded,
// and no CAF worker waits at all:
// 1. the actor, seeing checkpoint_due(), calls request(p);
// 2. when p's turn comes, the thread calls go(p) (the actor gets a message);
// 3. the actor calls hand_over(&partition) and then accepts only the
//    begun message, leaving the rest in its mailbox;
// 4. the thread calls partition::begin_checkpoint() and begun(p): the
//    partition is the actor's again, and serves;
// 5. the thread writes the job and calls done(p, job, failure) (job is
//    nullptr if begin_checkpoint failed);
// 6. the actor calls partition::finish_checkpoint() (it gets a message).
// The actor must answer every go(p) with hand_over(), or stop() hangs; and
// must not clear the partition or begin another checkpoint until step 6.
//
// Owned by node; start() and stop() from the owner, the rest from any thread.
class checkpointer {
 public:
  using job_ptr = std::shared_ptr<engine::checkpoint_job>;
  // Called on the checkpoint thread; must not block.
  using go_fn = std::function<void(partition_id)>;
  using begun_fn = std::function<void(partition_id)>;
  using done_fn = std::function<void(partition_id, job_ptr, std::optional<engine::error>)>;

  checkpointer(node_metrics& metrics, go_fn go, begun_fn begun, done_fn done);
  ~checkpointer();  // stop()

  checkpointer(const checkpointer&) = delete;
  checkpointer& operator=(const checkpointer&) = delete;

  void start();
  // Finishes the checkpoint in progress (done() is called for it), drops
  // the queued requests and joins the thread. Idempotent.
  void stop();

  // Queues p. Requires: p has no request outstanding (the actor tracks that).
  void request(partition_id p);
  // The answer to go(p). Requires: the caller owns `part` and does not touch
  // it until begun(p) is called.
  void hand_over(engine::partition* part);

 private:
  void run();

  node_metrics& metrics_;
  const go_fn go_;
  const begun_fn begun_;
  const done_fn done_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<partition_id> queue_;  // guarded by mu_
  engine::partition* handed_ = nullptr;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  std::thread thread_;
};

}  // namespace annal::actors
