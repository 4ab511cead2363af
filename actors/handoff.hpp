#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/membership.hpp"
#include "actors/node.hpp"
#include "actors/partition_transfer.hpp"
#include "cluster/meta_store.hpp"

namespace annal::actors {

struct handoff_options {
  std::string node_id;
  std::size_t batch_bytes = 1u << 20;  // per shipLog request
  // The copy seals the source once it is this close to the source's end.
  std::uint64_t seal_lag_bytes = 4u << 20;
  // How long the source holds a sealed partition before it fences the
  // handoff off by itself (the copy died or lost its metadata store).
  std::chrono::milliseconds hold_for{5000};
  // A failed move is tried again after this long.
  std::chrono::milliseconds retry_after{1000};
  std::chrono::milliseconds call_timeout{15000};  // per peer or local call
};

// A partition's own record in the metadata store: "/annal/p/<p>".
inline constexpr const char* k_partition_prefix = "/annal/p/";

// Partition handoff (docs/cluster.md, "Handoff"), both sides, on one node.
//
// Copy side (the node a pending move targets): one worker thread copies the
// partition from its current owner over the peer link while the owner
// serves, seals the owner, ships the rest, and commits the move with one
// metadata-store transaction (the map without the pin, the partition record
// with owner = this node and ownerEpoch + 1) that fails if the owner fenced
// the handoff off meanwhile. Then it applies the new map.
//
// Source side (partition_transfer, served to peers): ships records, seals
// and unseals. A seal not ended by the copy within hold_for is ended here:
// the partition record's ownerEpoch is raised by a transaction (so that the
// copy's commit can no longer succeed) and the partition is unsealed; if
// the copy committed first, the partition is not unsealed and the new map
// (applied from the store) turns the held requests into not_owner.
//
// Both: a copy of a partition this node does not own, that no pending move
// brings here, and whose record names another owner, is deleted.
class handoff_manager final : public partition_transfer {
 public:
  handoff_manager(handoff_options options, cluster::meta_store& store, node& local,
                  membership& members);
  ~handoff_manager() override;  // stop()

  void start();
  void stop();  // idempotent; the worker finishes its current step first

  // Called with every applied map (membership's applied listener).
  void on_map_applied(const cluster::cluster_map& map);

  // partition_transfer
  void ship_log(partition_id p, lsn from, std::size_t max_bytes,
                reply_fn<engine::shipped_batch> reply) override;
  void seal(partition_id p, std::chrono::milliseconds hold_for, reply_fn<lsn> reply) override;
  void unseal(partition_id p, reply_fn<lsn> reply) override;

  // Moves this node completed and the longest write pause among them.
  std::uint64_t completed_moves() const;
  std::chrono::microseconds longest_pause() const;

 private:
  struct partition_record {
    std::string owner;
    std::uint64_t owner_epoch = 0;
    std::int64_t mod_revision = 0;  // 0: no record
  };

  void run();
  // Copies partition p here from `source`; true when the move committed.
  bool move(partition_id p, const std::string& source, const cluster::replica_set& target);
  void end_expired_seals();
  void delete_stale_copies(const cluster::cluster_map& map);
  result<partition_record> read_record(partition_id p);

  handoff_options options_;
  cluster::meta_store& store_;
  node& local_;
  membership& members_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                                                  // guarded by mu_
  bool map_changed_ = false;                                               // guarded by mu_
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> seals_;   // guarded by mu_
  std::map<std::uint32_t, std::chrono::steady_clock::time_point> failed_;  // worker only
  std::uint64_t completed_ = 0;                                            // guarded by mu_
  std::chrono::microseconds longest_pause_{0};                             // guarded by mu_
  std::thread thread_;
};

}  // namespace annal::actors
