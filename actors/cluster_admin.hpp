#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/requests.hpp"
#include "cluster/cluster_map.hpp"

namespace annal::actors {

// One node as an operator sees it.
struct node_status {
  cluster::node_entry entry;
  bool in_map = false;           // false: registered, not (yet) in the map
  bool up = false;               // holds a live lease in the metadata store
  std::uint32_t partitions = 0;  // primaries it holds in the current placement
};

// A partition whose computed placement differs from where it is pinned: its
// data has to move (a handoff) before the map can drop the pin.
struct pending_move {
  partition_id partition;
  cluster::replica_set pinned;
  cluster::replica_set target;
};

struct cluster_status {
  std::string self;                         // the node that answered
  std::optional<cluster::cluster_map> map;  // nullopt: no cluster formed yet
  std::vector<cluster::replica_set> placement;
  std::vector<node_status> nodes;
  std::vector<pending_move> pending_moves;
  bool metadata_available = false;  // false: the map is this node's last applied one
};

// Membership changes, as the admin HTTP API and the CLI request them. Every
// change is one compare-and-swap of the cluster map in the metadata store,
// epoch + 1. `expected_epoch` (optional): fail unless the map is still at
// that epoch. Errors: errc::conflict when the map changed meanwhile (or is
// not at expected_epoch), errc::metadata_unavailable when the metadata store
// cannot be reached, errc::not_found for an unknown node, errc::invalid_argument
// for a change the map's rules refuse (e.g. removing a node that still holds
// partitions).
//
// No change moves data by itself: a partition whose replica set a change
// would alter stays pinned where it is (a map override) until a handoff moves
// it (docs/cluster.md).
//
// Thread-safe; replies come on another thread (the calls wait for the store).
class cluster_admin {
 public:
  virtual ~cluster_admin() = default;

  virtual void status(reply_fn<cluster_status> reply) = 0;
  virtual void add_node(cluster::node_entry node, std::optional<std::uint64_t> expected_epoch,
                        reply_fn<cluster::cluster_map> reply) = 0;
  virtual void drain_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                          reply_fn<cluster::cluster_map> reply) = 0;
  virtual void remove_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                           reply_fn<cluster::cluster_map> reply) = 0;
  // A joining node (registered while the cluster requires approval) becomes
  // active; errc::invalid_argument for a node that is not joining.
  virtual void approve_node(std::string id, std::optional<std::uint64_t> expected_epoch,
                            reply_fn<cluster::cluster_map> reply) = 0;
  // Whether nodes that register from now on wait for approval.
  virtual void set_require_approval(bool required, std::optional<std::uint64_t> expected_epoch,
                                    reply_fn<cluster::cluster_map> reply) = 0;
};

}  // namespace annal::actors
