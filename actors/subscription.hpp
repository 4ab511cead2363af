#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/metrics.hpp"
#include "actors/read_all.hpp"
#include "actors/requests.hpp"

// Subscriptions (docs/subscriptions.md): one stream, a category, or all
// streams (with an optional filter), from the start, the end, a resume
// position or (one stream) a version; catch-up from the log, then live.
//
// A subscription is a loop of read-all pages from per-partition positions
// (actors/read_all.hpp). Once a page comes back at the end of every
// partition, the next read is a long-poll (read_all_request::wait_ms): the
// node parks it in the partition actors and answers as soon as new records
// are acknowledged. Catch-up and live are one code path over the same
// positions, so the switch between them can neither skip nor repeat an
// event. The protocol edges (binary push with credits, server-sent events)
// only grant credits and take batches.
namespace annal::actors {

struct subscription_target {
  enum class kind : std::uint8_t { all, stream, category };
  kind what = kind::all;
  std::string name;  // the stream (kind::stream) or the category (kind::category)
};

struct subscription_start {
  enum class kind : std::uint8_t {
    start,     // every event the log still has
    end,       // only events acknowledged after the subscription started
    position,  // a resume position: after the events it covers
    version,   // kind::stream targets only: from this stream version on
  };
  kind what = kind::start;
  std::vector<all_position> positions;  // kind::position: one per partition
  stream_version version;               // kind::version
};

// An extra predicate on the events of the target (a query's `where`).
// Called on the thread that delivers a page; must be thread-safe.
using event_filter = std::function<bool(const all_event&)>;

// The category of a stream: its id up to the first '-', or the whole id.
inline std::string_view stream_category(std::string_view stream) {
  return stream.substr(0, stream.find('-'));
}

struct subscription_request {
  subscription_target target;
  subscription_start from;
  event_filter where;  // empty: every event of the target
};

struct subscription_options {
  // Events one read returns at most (also bounded by the credits): the
  // most a subscription ever holds.
  std::size_t page_events = 4096;
  // Byte budget of one read (see read_all_request::max_bytes).
  std::size_t page_bytes = k_read_all_max_bytes;
  // How long a read waits for new events once the subscription is live.
  std::chrono::milliseconds wait{5000};
  // Retries of retryable failures (not_owner, node_unavailable,
  // connection_lost, timeout, partition_unavailable, overloaded,
  // shutting_down): backoff doubling from initial to max.
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
  // The subscription ends with the failure once retryable failures lasted
  // this long without a successful read in between ...
  std::chrono::milliseconds give_up_after{60000};
  // ... or after this many not_owner answers in a row (a routing storm).
  std::size_t max_not_owner = 50;
};

// Events handed to the client at once, in delivery order.
struct subscription_batch {
  std::vector<all_event> events;
  // One position per partition: where the batch starts and where the
  // subscription continues after it (the resume position after the batch;
  // it also skips filtered events that followed the last event).
  std::vector<all_position> from;
  std::vector<all_position> next;
  std::vector<std::shared_ptr<const void>> buffers;  // keep the event views valid

  // Calls f(event, position) for every event in order, with the resume
  // position right after that event (`next` after the last one).
  template <class F>
  void for_each(F&& f) const {
    auto at = from;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& e = events[i];
      if (i + 1 == events.size()) {
        at = next;
      } else if (e.partition.value() < at.size()) {
        at[e.partition.value()] = e.after();
      }
      f(e, static_cast<const std::vector<all_position>&>(at));
    }
  }
};

// What a subscription tells its owner. Each is called outside the
// subscription's lock, on the thread of the reply that caused it (an actor's,
// a network thread, or the caller of grant()/ack()); they must not block.
struct subscription_callbacks {
  // Once, first: where the subscription starts (its resume position), or why
  // it could not start (then nothing else is called). Released after the
  // call, so it may hold its owner alive until then.
  std::function<void(result<std::vector<all_position>>)> started;
  // A batch of at most the credits granted. Nothing more is read until
  // ack(): the subscription holds at most one page.
  std::function<void(subscription_batch)> events;
  // Once, after started(ok): the subscription ended with this error (never
  // after cancel()).
  std::function<void(error)> ended;
};

// Runs a task after a delay, on any thread (a retry's backoff).
using schedule_fn = std::function<void(std::chrono::milliseconds, std::function<void()>)>;

// One subscription. Shared: its pending reads and scheduled retries hold it
// alive; the owner keeps it until it ended or it cancel()s it.
//
// Thread-safe: grant(), ack() and cancel() may be called from any thread,
// also from inside a callback. The request_handler and the metrics must
// outlive every read it issues (as for any request).
class subscription : public std::enable_shared_from_this<subscription> {
  struct private_tag {};

 public:
  // Starts resolving the start position, then reads as credits allow.
  // `credits`: the initial grant.
  static std::shared_ptr<subscription> start(request_handler& handler, subscription_request request,
                                             subscription_options options,
                                             subscription_callbacks callbacks, schedule_fn schedule,
                                             node_metrics* metrics, std::uint64_t credits = 0);

  subscription(private_tag, request_handler& handler, subscription_request request,
               subscription_options options, subscription_callbacks callbacks, schedule_fn schedule,
               node_metrics* metrics, std::uint64_t credits);
  ~subscription();

  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;

  // Adds credits: the client takes this many more events.
  void grant(std::uint64_t credits);
  // The client took the last batch: reading may go on.
  void ack();
  // Ends the subscription without calling `ended`. Idempotent.
  void cancel();

  // Events read and handed over but not yet acknowledged (a test hook).
  std::size_t held_events() const;

 private:
  enum class phase : std::uint8_t { resolving, running, ended };

  void resolve();
  void on_ends(result<read_all_page> page);
  void on_stream_start(std::vector<all_position> ends, result<engine::read_page> page);
  void begin(std::vector<all_position> positions);
  void fail_start(error e);
  // Issues the next read when credits, the held page and the phase allow.
  // Never recursive: a call while another runs makes that one loop again.
  void run();
  void on_page(result<read_all_page> page);
  // A failed read: retried after a backoff, or the end.
  void on_failure(std::unique_lock<std::mutex>& lock, error e);
  void end(std::unique_lock<std::mutex>& lock, error e);
  bool matches(const all_event& e) const;
  void release_held(std::size_t n);

  request_handler& handler_;
  const subscription_request request_;
  const subscription_options options_;
  subscription_callbacks callbacks_;
  schedule_fn schedule_;
  node_metrics* metrics_;
  const std::uint64_t watch_;  // this subscription's long-poll key

  mutable std::mutex mu_;
  phase phase_ = phase::resolving;       // guarded by mu_
  std::uint64_t credits_ = 0;            // guarded by mu_
  std::size_t held_ = 0;                 // guarded by mu_: events not acknowledged
  bool reading_ = false;                 // guarded by mu_: a read or a retry pending
  bool live_ = false;                    // guarded by mu_: the last page was at the end
  bool running_ = false;                 // guarded by mu_: run() is looping
  bool again_ = false;                   // guarded by mu_: run() must loop once more
  std::uint64_t seq_ = 0;                // guarded by mu_: long-poll rounds
  std::vector<all_position> positions_;  // guarded by mu_
  // Catch-up of several partitions reads them one at a time, in rounds (a
  // read-all page of many partitions reads up to `limit` events of each to
  // merge them by timestamp, most of which it drops): the partition read
  // next, and the pages read from it this round. A round ends with a page
  // of every partition; live_ once that page is at the end everywhere.
  std::size_t catch_up_cursor_ = 0;  // guarded by mu_
  std::size_t catch_up_pages_ = 0;   // guarded by mu_
  static constexpr std::size_t k_catch_up_pages_per_partition = 64;
  bool catching_up_one_by_one() const {  // requires mu_
    return partitions_.empty() && !live_ && catch_up_cursor_ < positions_.size();
  }
  // Set while resolving, immutable once running (read without mu_ then).
  std::vector<partition_id> partitions_;  // read only these (a stream's); empty: all
  stream_version min_version_;            // kind::stream: deliver from this version
  std::optional<std::chrono::steady_clock::time_point> failing_since_;  // guarded by mu_
  std::size_t not_owner_in_a_row_ = 0;                                  // guarded by mu_
  std::chrono::milliseconds backoff_;                                   // guarded by mu_
};

}  // namespace annal::actors
