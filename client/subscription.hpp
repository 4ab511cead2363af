#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "net/wire_codec.hpp"

namespace annal::client {

// One event of a subscription, owning its bytes.
struct subscription_event {
  std::string stream;
  partition_id partition;
  std::uint32_t index = 0;  // in its record
  event_id id{};
  std::string type;
  std::string data;
  std::string metadata;
  stream_version version;
  timestamp_us timestamp = 0;
  lsn position;  // its record's lsn
  // Where the subscription resumes after this event (one per partition).
  std::vector<actors::all_position> after;
};

// A subscription read by blocking calls (docs/subscriptions.md), over a
// client's connection. Credits: it keeps at most `window` events granted and
// not yet returned by next(), granting more as next() hands events out, so
// the node never sends faster than the caller reads.
//
// Not thread-safe: one thread calls next(); close() may come from any thread.
// The client must outlive it.
class subscription {
  struct private_tag {};

 public:
  // Subscribes and waits for the node's answer (the client's request timeout
  // applies): the node's error, or the open subscription.
  static engine::result<std::unique_ptr<subscription>> open(
      client& c, net::wire_codec::subscribe_params params, std::uint32_t window = 1024);

  subscription(private_tag, client& c, std::uint32_t window);
  ~subscription();  // close()

  // The next event: nullopt when none came within `timeout`; the error the
  // subscription ended with (connection_lost when the connection dropped).
  // Copies the event and its resume position (`after`): see next_view() for
  // the same without copies.
  engine::result<std::optional<subscription_event>> next(std::chrono::milliseconds timeout);

  // As next(), without copying: the event as views into the received batch,
  // valid until the next call of next_view() or next() (or the
  // subscription's destruction); nullptr when none came within `timeout`.
  // Its resume position is position() until that next call.
  engine::result<const actors::all_event*> next_view(std::chrono::milliseconds timeout);

  // Where the subscription resumes after the last event next() or
  // next_view() returned (before any: where it started). Kept up to date per
  // event: one entry changes per event, the whole of it once per batch.
  const std::vector<actors::all_position>& position() const { return position_; }
  std::uint64_t id() const { return id_; }

  // Unsubscribes. Idempotent.
  void close();

 private:
  struct shared;  // what the connection's callbacks fill
  client& client_;
  const std::uint32_t window_;
  std::shared_ptr<shared> shared_;
  std::uint64_t id_ = 0;
  std::vector<actors::all_position> position_;
  // The batch being handed out by next(); kept until the call after its
  // last event (next_view() hands out views into it).
  std::optional<actors::subscription_batch> current_;
  std::size_t current_index_ = 0;
  std::uint32_t taken_since_grant_ = 0;
  bool closed_ = false;
};

}  // namespace annal::client
