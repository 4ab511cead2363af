#pragma once

#include <vector>

#include "cluster/cluster_map.hpp"

namespace annal::cluster {

// The target layout after the set of active nodes changed (docs/cluster.md,
// "Sticky layout"). Starting from `current` (index = partition id, primary
// first), every replica stays where it is unless:
//   1. its node is no longer active: it is dropped, and the set refilled from
//      the least loaded active nodes (ties: nearest clockwise first);
//   2. loads are uneven: while the busiest node holds two or more replicas
//      more than the least loaded one, one replica moves from the busiest to
//      the least loaded node, taking a partition whose set changed already
//      if there is one (its data moves anyway), else the partition whose
//      point is nearest (clockwise) to the receiving node's tokens.
// A replica that moves takes the position of the one it replaces.
// The result has P sets of min(R, N) distinct active nodes, and node loads
// differ by at most one, so no node holds more than ceil(P * R / N). From a
// layout balanced that way, with R = 1, a node that joins takes exactly its
// share and a node that leaves gives up exactly its partitions: nothing
// else moves (with R > 1 a few more sets may change; docs/cluster.md).
// Deterministic: a pure function of its arguments, whatever the order of
// map.nodes.
// Requires: validate(map).ok() ignoring map.layout; `current` has P sets or
// is empty (then every set starts empty).
std::vector<replica_set> rebalance(const std::vector<replica_set>& current, const cluster_map& map);

}  // namespace annal::cluster
