#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "actors/metrics.hpp"
#include "actors/requests.hpp"
#include "engine/node_log.hpp"
#include "engine/partition.hpp"

namespace annal::actors {

// The limits of one query on this node (docs/queries.md, "Limits").
struct query_options {
  std::uint64_t max_events_scanned = 1'000'000'000;  // over all its partitions
  std::uint32_t timeout_ms = 30'000;
};

// Half the cores, at least one: the io, sync and checkpoint threads and the
// clients of a single machine need the rest.
inline std::size_t default_actor_threads() {
  return std::max<std::size_t>(1, std::thread::hardware_concurrency() / 2);
}

struct node_options {
  std::string node_id = "dev";
  std::string data_dir = "annal-data";
  std::uint32_t partition_count = 64;  // used only when the store is created
  engine::fsync_mode fsync = engine::fsync_mode::always;
  std::chrono::milliseconds sync_interval{100};  // fsync=interval
  // Group-commit sync threads (more than one overlap their rounds) and CAF
  // scheduler workers. On 2 cores, one of each beat two of each with single
  // events and did no worse with batches or reads (docs/benchmarks.md,
  // "Acknowledged by the sync thread").
  std::size_t sync_threads = 1;
  std::size_t actor_threads = default_actor_threads();
  // How long an idle scheduler worker spins before it parks
  // (actors/scheduler_policy.hpp).
  std::uint32_t actor_spin_us = 50;
  engine::partition_options partition;
  query_options query;
  // nullptr: the real file system. Tests pass a fault-injecting one; it must
  // outlive the node.
  engine::file_system* fs = nullptr;
};

// One node's store served by CAF actors: a partition actor per partition
// (sole owner of its engine partition), a router from stream to partition,
// group-commit sync threads that release each append's reply after the
// fdatasync that covers it, and background checkpoints.
class node {
 public:
  // Opens (recovering) or creates the store in options.data_dir and starts
  // the actors. Fails if the store cannot be opened at all; partitions
  // damaged on their own answer errc::partition_unavailable.
  static result<std::unique_ptr<node>> start(node_options options);
  ~node();  // stop()

  request_handler& handler();
  node_metrics& metrics();
  const node_options& options() const;
  std::uint32_t partition_count() const;

  // --- Partition handoff (docs/cluster.md, "Handoff"); each call ends in
  // exactly one reply, errc::shutting_down once stop() began. ---

  // The fence: whether this node serves client requests to `p` (every
  // partition is served until told otherwise).
  void set_owned(partition_id p, bool owned);
  // Source side: see actors::partition_transfer (this node holds no deadline).
  void ship_log(partition_id p, lsn from, std::size_t max_bytes,
                reply_fn<engine::shipped_batch> reply);
  void seal(partition_id p, reply_fn<lsn> reply);
  void unseal(partition_id p, reply_fn<lsn> reply);
  // Copy side (a partition this node does not serve): applies the batch and
  // replies once it is durable.
  void apply_shipped(partition_id p, engine::shipped_batch batch,
                     reply_fn<engine::shipped_write> reply);
  // The partition's end lsn.
  void partition_end(partition_id p, reply_fn<lsn> reply);
  // Deletes this node's copy of a partition it does not serve.
  void clear_partition(partition_id p, reply_fn<lsn> reply);

  // Stops taking requests (new ones fail with errc::shutting_down), waits for
  // the ones in flight, runs a final sync and checkpoint, and stops the
  // actors. Blocking; idempotent. Every append acknowledged before or during
  // stop() is durable when it returns.
  void stop();

 private:
  struct impl;
  explicit node(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace annal::actors
