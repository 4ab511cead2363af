#pragma once

#include <deque>
#include <variant>

#include <caf/event_based_actor.hpp>

#include "actors/checkpointer.hpp"
#include "actors/group_commit.hpp"
#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "engine/node_log.hpp"
#include "engine/partition.hpp"

namespace annal::actors {

// What a partition actor works with. Everything outlives the actor (owned by
// node); the partition is the actor's alone while it runs.
struct partition_context {
  engine::partition* partition = nullptr;
  engine::node_log* wal = nullptr;
  group_commit* commit = nullptr;
  checkpointer* checkpoints = nullptr;
  node_metrics* metrics = nullptr;
};

// The sole owner of one engine::partition. Serves the request messages of
// messages.hpp one at a time: reads reply at once; writes reply only once the
// node log's durable position covers them (group_commit notifies). Waiting
// replies are kept in write order.
//
// Checkpoints: when checkpoint_due(), the actor asks the checkpoint thread
// for a turn (checkpointer.hpp). On its turn it hands the partition over and
// switches to a behavior that accepts only checkpoint_done_msg, with skip as
// the default handler, so every other message waits in the mailbox in order;
// then it returns to the normal behavior. (A detached actor would take a
// thread per partition; blocking a worker is not allowed.)
//
// Stop: drain_msg counts down once every earlier request is applied;
// final_msg releases (or fails) every waiting write and quits.
class partition_actor : public caf::event_based_actor {
 public:
  partition_actor(caf::actor_config& config, partition_context context);

  caf::behavior make_behavior() override;
  const char* name() const override { return "partition"; }

 private:
  struct held_append {
    reply_fn<append_reply> reply;
    append_reply value;
    request_clock::time_point received;
  };
  struct held_write {
    reply_fn<write_reply> reply;
    write_reply value;
  };
  struct waiter {
    node_log_position after;
    std::variant<held_append, held_write> held;
  };

  void on_append(append_msg& m);
  void on_read(read_msg& m);
  void on_write(engine::result<engine::write_result> r, reply_fn<write_reply>& reply);

  void hold(node_log_position after, held_append held);
  void hold(node_log_position after, held_write held);
  void hold(waiter w);
  // Releases every waiting write the node log made durable (or fails them all
  // after a node-log failure), then polls checkpoint_due().
  void release_ready();
  void release(node_log_position durable);
  void fail_all(const engine::error& e);
  void maybe_checkpoint();
  void begin_checkpoint();

  template <class T>
  void fail(reply_fn<T>& reply, const engine::error& e) {
    metrics_.count_error(e.code);
    reply(e);
  }
  void reply_now(waiter& w, request_clock::time_point now);
  void count_read(const engine::read_page& page);

  partition_context context_;
  engine::partition& partition_;
  engine::node_log& wal_;
  node_metrics& metrics_;
  const partition_id id_;
  std::deque<waiter> waiters_;
  bool checkpoint_requested_ = false;
  bool checkpoint_failed_ = false;
  bool stopping_ = false;
};

}  // namespace annal::actors
