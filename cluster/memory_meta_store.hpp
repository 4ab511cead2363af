#pragma once

#include <cstddef>
#include <memory>
#include <thread>

#include "cluster/meta_store.hpp"

namespace annal::cluster {

// The in-process meta_store of dev mode and of tests: etcd's semantics
// (global revision, per-key create/mod revision and version, leases, watches
// from a revision) in memory, lost when the process exits.
//
// Leases expire by the steady clock: a background thread owned by the store
// wakes at the earliest deadline and deletes the keys of each expired lease
// in one revision (so watchers see delete events within about the TTL);
// every call also expires overdue leases first, so a keep-alive after the
// deadline fails even if that thread has not run yet.
//
// History: every revision's events are kept until compact() or until more
// than `max_history` revisions are held (the oldest are then dropped, as an
// etcd auto-compaction would); a watch from a dropped revision ends with
// watch_error::kind::compacted.
//
// Thread-safe (one mutex guards all state). Each watch has its own thread.
// Watch handles may outlive the store (their threads share its state), but
// they deliver nothing after the store is destroyed.
class memory_meta_store final : public meta_store {
 public:
  struct options {
    std::size_t max_history = 100'000;
  };

  memory_meta_store();
  explicit memory_meta_store(options opts);
  ~memory_meta_store() override;

  memory_meta_store(const memory_meta_store&) = delete;
  memory_meta_store& operator=(const memory_meta_store&) = delete;

  engine::result<range_result> range(const std::string& key, bool prefix = false) override;
  engine::result<txn_result> txn(const std::vector<compare>& compares, const std::vector<op>& on_success,
                                 const std::vector<op>& on_failure) override;
  engine::result<std::int64_t> lease_grant(std::chrono::seconds ttl) override;
  engine::status lease_keep_alive(std::int64_t id) override;
  engine::status lease_revoke(std::int64_t id) override;
  engine::status compact(std::int64_t revision) override;
  std::unique_ptr<watch_handle> watch(const std::string& prefix, std::int64_t from_revision, watch_callback on_events,
                                      watch_error_callback on_error = {}) override;

  struct core;  // the shared state; defined in the .cpp

 private:
  std::shared_ptr<core> core_;
  std::thread lease_thread_;  // expires leases; joined by the destructor
};

}  // namespace annal::cluster
