#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>
#include <variant>

#include "actors/messages.hpp"
#include "actors/metrics.hpp"
#include "engine/errors.hpp"
#include "engine/shipped_batch.hpp"
#include "engine/types.hpp"

namespace annal::actors {

// The writes of one partition that wait for the node log to make them
// durable, with their replies, in write order. The partition actor holds
// them; the sync thread whose round covers them answers them (group_commit),
// so that an acknowledgement takes no trip through the actor's mailbox. The
// actor answers on its own turn only a write that is covered already, what a
// checkpoint's sync covered, and, when it stops, the rest.
//
// Replies are called under the lock, in write order (a retry held behind a
// later write waits for it); reply callbacks must not block (requests.hpp).
//
// The actor may ask to be told of releases (listen()): it then gets a
// durable_atom after each round in which it had writes waiting, for what
// depends on visibility (parked long-polls, a seal waiting for no write to be
// in flight). Thread-safe.
class durable_acks {
 public:
  struct held_append {
    reply_fn<append_reply> reply;
    append_reply value;
    request_clock::time_point received;
  };
  struct held_write {
    reply_fn<write_reply> reply;
    write_reply value;
  };
  struct held_shipped {
    reply_fn<engine::shipped_write> reply;
    engine::shipped_write value;
  };
  using held = std::variant<held_append, held_write, held_shipped>;

  explicit durable_acks(node_metrics& metrics) : metrics_(metrics) {}
  durable_acks(const durable_acks&) = delete;
  durable_acks& operator=(const durable_acks&) = delete;

  // Answers `reply` at once when nothing waits and `durable` covers `after`
  // (false); otherwise holds it until a release covers it (true: the caller
  // then asks group_commit for a round).
  bool hold(node_log_position after, held reply, node_log_position durable);
  // Answers every held write that `durable` covers, in write order. True
  // when some remain.
  bool release(node_log_position durable);
  // Answers `reply` now, ahead of the held writes (a retry of a write that is
  // durable already).
  void answer_now(held reply) { finish(reply, nullptr, request_clock::now()); }
  // Fails every held write with `e`; returns how many there were.
  std::size_t fail_all(const engine::error& e);
  bool empty() const;

  // Whether the actor wants a durable_atom after each release. After turning
  // it on, the actor reads the node log's durable position again (a round
  // may have released just before).
  void listen(bool on) { listening_.store(on); }
  bool listening() const { return listening_.load(); }

 private:
  struct waiter {
    node_log_position after;
    held reply;
  };
  // Calls the reply with its value, or with `failure` when not null.
  void finish(held& reply, const engine::error* failure, request_clock::time_point now);

  node_metrics& metrics_;
  mutable std::mutex mu_;
  std::deque<waiter> waiters_;  // guarded by mu_
  std::atomic<bool> listening_{false};
};

}  // namespace annal::actors
