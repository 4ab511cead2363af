#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>

#include <caf/event_based_actor.hpp>

#include "actors/checkpointer.hpp"
#include "actors/durable_acks.hpp"
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
// node log's durable position covers them. Waiting replies are kept in write
// order in the partition's durable_acks, and the sync thread whose round
// covers them answers them. Each message first makes visible what the node
// log made durable by then, so a read sent after an acknowledgement sees its
// write.
//
// Checkpoints: when checkpoint_due(), the actor asks the checkpoint thread
// for a turn (checkpointer.hpp). On its turn it hands the partition over and
// switches to a behavior that accepts only checkpoint_begun_atom, with skip
// as the default handler, so every other message waits in the mailbox in
// order while the thread encodes the checkpoint (no worker waits: a detached
// actor would take a thread per partition). Then it serves while the thread
// writes the checkpoint, and applies it on checkpoint_done_msg. A clear_msg
// that comes meanwhile waits for that.
//
// Stop: drain_msg counts down once every earlier request is applied;
// final_msg releases (or fails) every waiting write and quits.
//
// Long-polls (wait_msg, docs/subscriptions.md): a wait with nothing past its
// position is parked, one per watch key, and answered when release() makes
// new records visible, at its deadline (one delayed wait_sweep_atom for the
// earliest), or when a newer wait of its key replaces it. Moving away or
// stopping answers every parked wait with the error.
//
// Handoff (docs/cluster.md): the actor serves client requests only while
// its node owns the partition (set_owned_msg; not_owner otherwise). A seal
// parks client requests in arrival order, unapplied, until unseal_msg (then
// they are served) or set_owned_msg{false} (then they fail with not_owner and
// their senders retry at the new owner). Shipping requests are served in
// every state: ship_log_msg on the owner, apply_shipped_msg on a copy.
class partition_actor : public caf::event_based_actor {
 public:
  // Waits before retrying a failed checkpoint: the first, and the most.
  static constexpr std::chrono::milliseconds k_first_checkpoint_retry{1000};
  static constexpr std::chrono::milliseconds k_last_checkpoint_retry{60000};

  partition_actor(caf::actor_config& config, partition_context context);

  caf::behavior make_behavior() override;
  const char* name() const override { return "partition"; }

 private:
  // A client request held by a seal.
  struct parked_request {
    std::function<void()> serve;
    std::function<void(const engine::error&)> fail;
  };

  // Handles `m` here if the partition is not served now (not owned: fails it
  // with not_owner; sealed: parks it); false when it is to be served.
  template <class Msg>
  bool gated(Msg& m, void (partition_actor::*serve)(Msg&));
  void on_append(append_msg& m);
  void on_read(read_msg& m);
  void on_read_last(read_last_msg& m);
  void on_stream_info(stream_info_msg& m);
  void on_set_metadata(set_metadata_msg& m);
  void on_delete_stream(delete_stream_msg& m);
  void on_put_snapshot(put_snapshot_msg& m);
  void on_get_snapshot(get_snapshot_msg& m);
  void on_read_all(read_all_msg& m);
  void on_query(query_msg& m);
  void on_query_step(const query_step_msg& m);
  void on_wait(wait_msg& m);
  // Answers the parked waits that records visible now satisfy.
  void wake_waits();
  // Answers the parked waits whose deadline passed; schedules the next sweep.
  void sweep_waits();
  void fail_waits(const engine::error& e);
  void schedule_sweep(request_clock::time_point at);
  void on_set_owned(const set_owned_msg& m);
  void on_apply_shipped(apply_shipped_msg& m);
  void on_seal(seal_msg& m);
  void on_unseal(unseal_msg& m);
  void on_clear(clear_msg& m);
  // Ends a seal: serves the parked requests, or fails them with `failure`.
  void end_seal(const std::optional<engine::error>& failure);
  // Answers the seal once no write is waiting for durability.
  void maybe_reply_seal();
  void on_write(engine::result<engine::write_result> r, reply_fn<write_reply>& reply);

  // Holds a write's reply until the node log makes it durable.
  void hold(node_log_position after, durable_acks::held reply);
  // Makes visible what the node log made durable and answers the parked
  // waits that it satisfies.
  void catch_up();
  // After a round that released writes (or a checkpoint): catches up,
  // releases what is durable (or fails every waiting write after a node-log
  // failure), then polls checkpoint_due().
  void release_ready();
  // Asks for a durable_atom after each release, while waits are parked or a
  // seal waits.
  void listen_for_releases();
  void fail_all(const engine::error& e);
  void maybe_checkpoint();
  void begin_checkpoint();
  void finish_checkpoint(checkpoint_done_msg& m);

  template <class T>
  void fail(reply_fn<T>& reply, const engine::error& e) {
    metrics_.count_error(e.code);
    reply(e);
  }
  void count_read(const engine::read_page& page);

  partition_context context_;
  engine::partition& partition_;
  engine::node_log& wal_;
  node_metrics& metrics_;
  const partition_id id_;
  durable_acks& acks_;
  bool checkpoint_requested_ = false;  // until the checkpoint ends
  // After a checkpoint that failed but may be retried: not before this, and
  // the wait after the next failure.
  std::chrono::steady_clock::time_point checkpoint_retry_at_{};
  std::chrono::milliseconds checkpoint_backoff_ = k_first_checkpoint_retry;
  bool checkpoint_running_ = false;    // begun, not finished: no clear meanwhile
  std::vector<clear_msg> clears_after_checkpoint_;
  bool checkpoint_failed_ = false;
  bool stopping_ = false;
  bool owned_ = true;
  bool sealed_ = false;
  std::deque<parked_request> parked_;   // while sealed_, in arrival order
  std::optional<reply_fn<lsn>> seal_reply_;  // owed once no write waits
  query_scans queries_;
  struct parked_wait {
    std::uint64_t seq = 0;
    all_position from;
    request_clock::time_point deadline;
    reply_fn<wake_reason> reply;
  };
  std::unordered_map<std::uint64_t, parked_wait> waits_;  // by watch key
  std::optional<request_clock::time_point> sweep_at_;     // the earliest sweep scheduled
  std::uint64_t anonymous_waits_ = 0;                     // keys for waits without one
};

}  // namespace annal::actors
