#pragma once

// The scan of one partition for one query: walks the partition's log from
// lsn 0 to a fixed end (the visible end when the query started, so that the
// answer covers a consistent prefix), filters events by the plan and builds
// a partial_result. Incremental: step() does a bounded amount of work, so
// the partition actor interleaves the scan with its other requests.
//
// Cost order per event: the time window, source and stream/category
// conjuncts once per record (a whole batch is skipped without decoding its
// events), then type conjuncts, then JSON (data before both) only when some
// remaining conjunct, group key or aggregate reads it. Nothing is allocated
// per event once warm: group keys are built in one reused buffer, JSON is
// copied into one padded buffer per document kind, and a listing replaces
// its worst candidate in place.
//
// Owned by the partition actor running the query; not thread-safe. Holds no
// reference into the partition between steps.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/errors.hpp"
#include "engine/partition.hpp"
#include "engine/query/partial_result.hpp"
#include "engine/query/plan.hpp"
#include "engine/types.hpp"

namespace annal::engine::query {

struct scan_limits {
  // Events (of append-batch records walked, matching or not) a node scans for
  // one query, over all its partitions.
  std::uint64_t max_events_scanned = 100'000'000;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // At a limit: stop with partial_result::partial instead of failing.
  bool allow_partial = false;
  // Bytes the candidates of a listing hold over the node's scans of the
  // query (see k_max_listed_bytes): more is query_too_large, also with
  // allow_partial (a cap on memory, like the group caps).
  std::uint64_t max_listed_bytes = k_max_listed_bytes;
};

// What the node's scans of one query use up together; scans on other
// threads update it at the same time.
struct scan_usage {
  // Events of the append records walked, matching or not.
  std::atomic<std::uint64_t> events_scanned{0};
  // Bytes of the listed-bytes budget taken: by the scans' candidates, which
  // take it in chunks of 64 KiB (or what is left) and keep it; a candidate
  // pushed out makes room in its scan's chunk.
  std::atomic<std::uint64_t> listed_bytes{0};
};

// Bytes of records fetched from the partition log per read.
inline constexpr std::size_t k_scan_read_bytes = 256u << 10;

class partition_scan {
 public:
  // Scans partition `partition` over [0, end).
  // Requires: `end` is a record boundary <= the partition's visible_end().
  partition_scan(std::shared_ptr<const plan> p, partition_id partition, lsn end);
  ~partition_scan();
  partition_scan(partition_scan&&) noexcept;
  partition_scan& operator=(partition_scan&&) noexcept;

  // Scans records worth about `max_bytes` more (at least one record), adding
  // their events to usage.events_scanned and listed events' bytes to
  // usage.listed_bytes, shared by the node's scans of this query (a record's
  // events and a candidate's bytes are reserved with one compare-and-swap
  // each, so the totals never pass their limits). A record whose events
  // would take usage.events_scanned past limits.max_events_scanned is not
  // scanned; the deadline is checked at each step and every
  // k_scan_read_bytes.
  // Returns true when the scan is finished: `end` reached, or a limit hit
  // with allow_partial (the result is then partial and stops at that record).
  // Errors: query_too_large (events scanned, without allow_partial; or a
  // group / distinct-value / listed-bytes cap), query_timeout (without
  // allow_partial), corruption and io errors from the log. After an error
  // the scan must not be stepped again.
  // Requires: `p` is the partition given to the constructor.
  result<bool> step(partition& p, std::size_t max_bytes, const scan_limits& limits,
                    scan_usage& usage);

  bool finished() const;
  // The next lsn to scan.
  lsn position() const;

  // The result so far (complete once step() returned true), with this
  // partition's position. Leaves the scan spent: call once.
  partial_result take();

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace annal::engine::query
