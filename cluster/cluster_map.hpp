#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/node_id.hpp"
#include "engine/errors.hpp"
#include "engine/types.hpp"

namespace annal::cluster {

// A partition's replicas, primary first.
using replica_set = std::vector<node_id>;

// What a node does in the placement.
enum class node_state : std::uint8_t {
  joining,   // registered, waiting for approval; holds no partition
  active,    // holds partitions
  draining,  // its partitions move away; holds none in the placement
};

const char* node_state_name(node_state s);
std::optional<node_state> node_state_from_name(std::string_view name);

struct node_entry {
  node_id id;
  std::string address;       // binary protocol endpoint advertised to peers, "host:port"
  std::string http_address;  // HTTP API endpoint, "host:port"; may be empty
  node_state state = node_state::joining;

  friend bool operator==(const node_entry&, const node_entry&) = default;
};

inline constexpr std::uint32_t k_default_partition_count = 64;
inline constexpr std::uint32_t k_default_replication_factor = 1;

// The cluster map: who is in the cluster and where partitions live. A plain
// value; an epoch exists only once the map was compare-and-swapped into the
// metadata store. Placement (placement.hpp) is a pure function of it.
struct cluster_map {
  std::uint64_t epoch = 0;
  std::uint32_t partition_count = k_default_partition_count;         // P, fixed at creation
  std::uint32_t replication_factor = k_default_replication_factor;  // R
  bool require_approval = false;  // new nodes join as `joining` until approved
  // In no particular order: placement does not depend on it.
  std::vector<node_entry> nodes;
  // The target replica set of every partition (index = partition id), set by
  // each edit that changes the active nodes (rebalance.hpp), so that targets
  // stay where they are across changes. Empty in maps from before layouts
  // (format version 1): the targets are then computed from the ring.
  std::vector<replica_set> layout;
  // Pinned replica sets, e.g. the old owner keeps a partition until its
  // handoff completes. They replace the target set of their partition only.
  std::map<partition_id, replica_set> overrides;

  // nullptr when no node has this id.
  const node_entry* find(std::string_view id) const;

  friend bool operator==(const cluster_map&, const cluster_map&) = default;
};

// ok, or errc::invalid_argument naming the first problem: P == 0, R == 0,
// an invalid or duplicated node id, an empty address, an override of a
// partition >= P, an empty override, an override naming a node twice or a
// node not in the map, a layout without exactly P sets, or a layout set
// without exactly min(R, active nodes) distinct active nodes.
engine::status validate(const cluster_map& map);

// The state a newly added node starts in: joining if the map requires
// approval, else active.
node_state initial_state(const cluster_map& map);

// The layout of a new cluster: the ring's placement of its active nodes,
// evened out by rebalance(). Requires: validate(map).ok().
std::vector<replica_set> initial_layout(const cluster_map& map);

// Operator edits. Each is pure: it returns a copy of `map` with the change and
// epoch + 1, for the caller to compare-and-swap into the metadata store. An
// edit that changes the set of active nodes also sets the layout to
// rebalance(targets(map), result) (rebalance.hpp, placement.hpp).
// Requires (all): validate(map).ok().

// errc::conflict if the id is taken, errc::invalid_argument if `node` is not
// a valid entry.
engine::result<cluster_map> add_node(const cluster_map& map, node_entry node);
// errc::not_found for an unknown id.
engine::result<cluster_map> set_node_state(const cluster_map& map, std::string_view id,
                                           node_state state);
// errc::not_found for an unknown id; errc::invalid_argument while the node
// still holds partitions: it is active, or an override names it.
engine::result<cluster_map> remove_node(const cluster_map& map, std::string_view id);
// Pins partition p to `replicas`. errc::invalid_argument if p >= P or the set
// is empty, repeats a node or names a node not in the map.
engine::result<cluster_map> set_override(const cluster_map& map, partition_id p,
                                         replica_set replicas);
// Unpins partition p; errc::not_found if it has no override.
engine::result<cluster_map> clear_override(const cluster_map& map, partition_id p);

}  // namespace annal::cluster
