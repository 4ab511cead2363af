#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "actors/requests.hpp"
#include "engine/partition.hpp"
#include "engine/query/partition_scan.hpp"
#include "engine/query/plan.hpp"

namespace annal::actors {

// One query's limits, shared by the partitions of a node that scan for it.
//
// Also the query's fate: one failed scan fails the whole node query (the
// node answers with the first error), so the first failure is kept here and
// every sibling scan stops at its next step with it, instead of scanning on
// for an answer nobody will get. A cancelled request (query_cancel) ends
// them the same way. Thread-safe.
struct query_budget {
  engine::query::scan_limits limits;
  engine::query::scan_usage usage;  // by all the node's partitions
  query_cancel cancel;              // the request's; may be null

  // Records `e` as the query's failure unless one is recorded already.
  void fail(const engine::error& e);
  // The recorded failure, if any; else connection_lost once the query is
  // cancelled.
  std::optional<engine::error> failure() const;

 private:
  mutable std::mutex mu_;  // taken once per scan step (about 1 MiB of log)
  std::optional<engine::error> failure_;  // guarded by mu_
};

// The queries a partition actor is scanning. A scan runs in steps of about
// k_query_step_bytes, so that requests to the partition are served between
// steps (the actor sends itself a step message after each one).
//
// Not thread-safe: owned by one partition actor.
class query_scans {
 public:
  // Bytes of log one step reads: about a millisecond of scanning.
  static constexpr std::size_t k_query_step_bytes = 1u << 20;

  explicit query_scans(partition_id id) : id_(id) {}

  // Starts a scan of [0, partition.visible_end()); returns its id.
  std::uint64_t start(engine::partition& partition, std::shared_ptr<const engine::query::plan> plan,
                      std::shared_ptr<query_budget> budget,
                      reply_fn<engine::query::partial_result> reply);
  // Runs one step of scan `id`; replies when it ends. Returns whether it
  // needs another step. An unknown id (failed meanwhile) needs none. A scan
  // whose query failed elsewhere replies with that failure at once; a scan
  // that fails records its error in the budget.
  bool step(engine::partition& partition, std::uint64_t id);
  // Fails every running scan with `e` (the partition moved, is cleared, or
  // the node stops), and so their queries.
  void fail_all(const engine::error& e);
  bool empty() const { return running_.empty(); }

 private:
  struct running {
    engine::query::partition_scan scan;
    std::shared_ptr<query_budget> budget;
    reply_fn<engine::query::partial_result> reply;
  };

  partition_id id_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, running> running_;
};

}  // namespace annal::actors
