#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "actors/messages.hpp"
#include "actors/read_all.hpp"
#include "actors/requests.hpp"

namespace annal::actors {

// The long-poll rounds of each reader (a subscription's watch key) on this
// node, with partition waits that stay parked across rounds
// (docs/subscriptions.md, "Live rounds"). A round reads only the partitions
// that may have news: a wait of theirs woke, or none is parked at the
// round's position. If that read finds nothing, waits are parked for just
// those partitions and the round waits for the first wake (then reads that
// partition) or its own deadline (then answers an empty page at the end).
// So a live round costs a few messages, not a read and a wait per
// partition.
//
// Thread-safe: rounds, wakes and timers arrive on any thread.
class live_watches {
 public:
  struct hooks {
    // A plain read-all (wait_ms = 0) of request.partitions.
    std::function<void(read_all_request, reply_fn<read_all_page>)> read;
    // Delivers `wait` to partition p's actor (or answers its reply with why not).
    std::function<void(partition_id, wait_msg)> park;
    // Runs `fire` once, `delay` from now, on some thread.
    std::function<void(std::chrono::milliseconds, std::function<void()>)> after;
  };

  // How long a parked wait lives in its partition actor without a wake: an
  // idle reader's waits are re-parked by its next round after that.
  static constexpr std::chrono::seconds k_parked_wait{60};
  // A watch without a round for this long is forgotten.
  static constexpr std::chrono::minutes k_idle_watch{2};

  explicit live_watches(hooks h);

  // One round. Requires: request.wait_ms > 0, request.watch != 0,
  // request.partitions and request.from filled in (one position per
  // partition of the node).
  void round(read_all_request request, reply_fn<read_all_page> reply);

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace annal::actors
