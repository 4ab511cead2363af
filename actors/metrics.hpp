#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/errors.hpp"

namespace annal::actors {

// A fixed-bucket histogram safe to observe from any thread. Rendered in
// Prometheus text format by net/.
class histogram {
 public:
  // `upper_bounds` ascending, in the unit observed (seconds for latencies).
  explicit histogram(std::vector<double> upper_bounds);

  void observe(double value);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative counts per bound, then the +Inf bucket (== count()).
  std::vector<std::uint64_t> cumulative_counts() const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<std::uint64_t>> buckets_;  // one per bound, then +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_nanos_{0};  // sum in units of 1e-9
};

// Latency buckets from 50 µs to 10 s, in seconds.
std::vector<double> latency_buckets();

inline constexpr std::size_t k_errc_count = static_cast<std::size_t>(engine::errc::last_errc) + 1;

// Counters a node exposes at /metrics. Every member is safe to update from
// any thread (relaxed atomics: figures, not synchronization).
struct node_metrics {
  std::atomic<std::uint64_t> append_requests{0};
  std::atomic<std::uint64_t> appended_events{0};
  std::atomic<std::uint64_t> appended_bytes{0};  // type + data + metadata
  std::atomic<std::uint64_t> read_requests{0};
  std::atomic<std::uint64_t> read_events{0};
  std::atomic<std::uint64_t> read_bytes{0};
  std::atomic<std::uint64_t> query_requests{0};  // node-level: one per query and node
  std::atomic<std::uint64_t> query_events_scanned{0};
  std::atomic<std::uint64_t> sync_rounds{0};
  std::atomic<std::uint64_t> checkpoints{0};
  std::atomic<std::uint64_t> checkpoint_failures{0};
  std::atomic<std::uint64_t> connections_open{0};      // binary protocol
  std::atomic<std::uint64_t> connections_accepted{0};  // binary protocol
  std::atomic<std::uint64_t> http_requests{0};
  // Subscriptions (actors/subscription.hpp), binary protocol and SSE.
  std::atomic<std::uint64_t> subscriptions_open{0};
  std::atomic<std::uint64_t> subscription_events{0};       // delivered
  std::atomic<std::uint64_t> subscription_held_events{0};  // read, not yet taken by the client
  // The most events one subscription ever held at once (bounded by its page).
  std::atomic<std::uint64_t> subscription_held_events_max{0};
  std::array<std::atomic<std::uint64_t>, k_errc_count> errors{};  // by errc
  histogram sync_seconds{latency_buckets()};    // one group-commit round (write + fdatasync)
  histogram append_seconds{latency_buckets()};  // request in -> reply out, in the node
  // Writing one partition checkpoint (its fsyncs); the partition serves
  // meanwhile.
  histogram checkpoint_seconds{latency_buckets()};
  // What one checkpoint holds its partition up: encoding it (on the
  // checkpoint thread).
  histogram checkpoint_pause_seconds{latency_buckets()};

  void count_error(engine::errc code) {
    errors[static_cast<std::size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace annal::actors
