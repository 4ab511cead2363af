#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "cluster/cluster_map.hpp"

namespace annal::cluster {

// Placement is consistent hashing with bounded loads on the ring of the
// active nodes (docs/cluster.md, "Placement"). A node holds at most
// node_capacity() replicas, which is at most (1 + 1/4) x the mean P * R / N
// rounded down, but never less than the mean rounded up.
inline constexpr std::uint64_t k_load_bound_numerator = 5;    // 1 + eps, eps = 1/4
inline constexpr std::uint64_t k_load_bound_denominator = 4;

// max(ceil(P * R / N), floor(5 * P * R / (4 * N))).
// Requires: node_count > 0.
std::uint64_t node_capacity(std::uint32_t partition_count, std::uint32_t replication_factor,
                            std::size_t node_count);

// Where every partition (index = partition id) should be, primary first,
// ignoring pins: map.layout, or for a map without a layout the ring's
// placement with bounded loads. A pure function of the map: the same in
// every process and for any order of map.nodes. Only active nodes hold
// partitions; a set has min(R, active nodes) entries, and is empty when no
// node is active.
// Cost without a layout: O(P * N * (log N + log V)); callers cache it per epoch.
// Requires: validate(map).ok().
std::vector<replica_set> targets(const cluster_map& map);

// Where every partition is served from: targets(map) with each override
// replacing its partition's set (and no other).
// Requires: validate(map).ok().
std::vector<replica_set> placement(const cluster_map& map);

// The primary of partition p, or nullopt when it has no replica.
// Computes the whole placement: use placement() for more than one partition.
// Requires: validate(map).ok(), p < map.partition_count.
std::optional<node_id> owner(const cluster_map& map, partition_id p);

// How many replicas each node holds in `sets` (nodes holding none are absent).
std::map<node_id, std::uint32_t> replica_counts(const std::vector<replica_set>& sets);

}  // namespace annal::cluster
