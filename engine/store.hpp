#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/clock.hpp"
#include "engine/errors.hpp"
#include "engine/file_system.hpp"
#include "engine/node_log.hpp"
#include "engine/partition.hpp"

namespace annal::engine {

struct store_options {
  std::string directory;
  std::uint32_t partition_count = 64;  // fixed when the store is created
  file_system* fs = nullptr;           // nullptr: posix_file_system()
  engine::clock* clock = nullptr;      // nullptr: system_clock()
  node_log_options node_log;
  partition_options partition;
};

// Counts from the recovery that opened a store.
struct recovery_stats {
  std::uint64_t node_log_records = 0;  // records scanned in the node log
  std::uint64_t replayed_records = 0;  // records applied to partitions
  std::uint64_t torn_bytes = 0;        // dropped from the node log's tail
};

// A node's data directory: the node log and one partition per id.
//
// Layout: <dir>/store.meta, <dir>/node-log/*.wal, <dir>/partitions/NNNNN/.
// Opening recovers: each partition loads its newest valid checkpoint, then
// the node log is replayed from the oldest position any partition needs.
// A partition whose data is damaged fails to open on its own (the others
// serve); partition() reports its error.
//
// The store object is thread-safe to hold; each partition is single-owner
// (see partition.hpp) and the node log is thread-safe.
class store {
 public:
  static result<std::unique_ptr<store>> open(store_options options);
  ~store();

  std::uint32_t partition_count() const { return partition_count_; }
  partition_id partition_for(std::string_view stream) const;

  // The partition, or errc::partition_unavailable with the reason it failed
  // to open. Requires: id < partition_count().
  result<partition*> get(partition_id id);
  node_log& wal() { return *wal_; }
  const recovery_stats& recovery() const { return recovery_; }

  // Runs a group-commit round and makes its writes visible in every
  // partition. Convenience for single-threaded users (tests, tools);
  // concurrent owners call node_log::sync and advance_durable themselves.
  result<node_log_position> sync();
  // Checkpoints every open partition. Requires: no other thread uses them.
  status checkpoint_all();
  // Checkpoints the partitions whose checkpoint_due() says so. Same requirement.
  status checkpoint_due();
  // sync() + checkpoint_all(): a clean stop. The store stays usable.
  status close();

 private:
  store() = default;
  status recover();

  store_options options_;
  file_system* fs_ = nullptr;
  std::uint32_t partition_count_ = 0;
  std::unique_ptr<node_log> wal_;
  std::vector<std::unique_ptr<partition>> partitions_;
  std::vector<std::optional<error>> failures_;  // per partition, set if it failed to open
  recovery_stats recovery_;
};

}  // namespace annal::engine
