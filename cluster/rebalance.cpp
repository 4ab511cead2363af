#include "cluster/rebalance.hpp"

#include <algorithm>
#include <limits>

#include "cluster/ring.hpp"

namespace annal::cluster {
namespace {

constexpr std::uint32_t k_none = std::numeric_limits<std::uint32_t>::max();

bool holds(const std::vector<std::uint32_t>& set, std::uint32_t node) {
  return std::find(set.begin(), set.end(), node) != set.end();
}

}  // namespace

std::vector<replica_set> rebalance(const std::vector<replica_set>& current,
                                   const cluster_map& map) {
  const std::uint32_t partitions = map.partition_count;
  std::vector<node_id> active;
  for (const auto& node : map.nodes) {
    if (node.state == node_state::active) active.push_back(node.id);
  }
  const ring nodes_ring(std::move(active));
  const auto& nodes = nodes_ring.nodes();  // sorted by id
  const std::size_t node_count = nodes.size();
  std::vector<replica_set> result(partitions);
  if (node_count == 0) return result;
  const std::size_t wanted = std::min<std::size_t>(map.replication_factor, node_count);

  auto index_of = [&](const node_id& id) -> std::uint32_t {
    auto it = std::lower_bound(nodes.begin(), nodes.end(), id);
    return it != nodes.end() && *it == id ? static_cast<std::uint32_t>(it - nodes.begin()) : k_none;
  };

  // Sets as node indices; replicas on nodes that left are dropped.
  std::vector<std::vector<std::uint32_t>> sets(partitions);
  std::vector<std::uint64_t> load(node_count, 0);
  for (std::uint32_t p = 0; p < partitions && p < current.size(); ++p) {
    for (const auto& id : current[p]) {
      const std::uint32_t n = index_of(id);
      if (n == k_none || holds(sets[p], n) || sets[p].size() == wanted) continue;
      sets[p].push_back(n);
      ++load[n];
    }
  }

  // distance[p][n]: clockwise distance from partition p's point to node n.
  // walk_order[p]: the nodes nearest first.
  std::vector<std::vector<std::uint64_t>> distance(partitions,
                                                   std::vector<std::uint64_t>(node_count));
  std::vector<std::vector<std::uint32_t>> walk_order(partitions);
  for (std::uint32_t p = 0; p < partitions; ++p) {
    for (const auto& hit : nodes_ring.walk(partition_point(partition_id{p}, partitions))) {
      distance[p][hit.node] = hit.distance;
      walk_order[p].push_back(hit.node);
    }
  }

  // 1. Refill: each missing replica goes to the least loaded node the set
  // does not hold, nearest first among equals.
  for (std::uint32_t p = 0; p < partitions; ++p) {
    while (sets[p].size() < wanted) {
      std::uint32_t best = k_none;
      for (std::uint32_t n : walk_order[p]) {
        if (!holds(sets[p], n) && (best == k_none || load[n] < load[best])) best = n;
      }
      sets[p].push_back(best);
      ++load[best];
    }
  }

  // A partition whose set already differs from `current` costs nothing
  // more to change again: its data moves anyway.
  std::vector<bool> changed(partitions, current.size() != partitions);
  for (std::uint32_t p = 0; p < partitions && p < current.size(); ++p) {
    changed[p] = sets[p].size() != current[p].size() ||
                 !std::equal(sets[p].begin(), sets[p].end(), current[p].begin(),
                             [&](std::uint32_t n, const node_id& id) { return nodes[n] == id; });
  }

  // 2. Even out: move one replica at a time from the busiest node to the
  // least loaded one (ties: lower id) until loads differ by at most one,
  // taking a partition that changed already if there is one, else the one
  // nearest to the receiving node. Each move lowers the sum of squared
  // loads, so this ends. A set holding the busiest node but not the least
  // loaded one always exists, since the busiest node is in more sets.
  for (;;) {
    const auto most =
        static_cast<std::uint32_t>(std::max_element(load.begin(), load.end()) - load.begin());
    const auto least =
        static_cast<std::uint32_t>(std::min_element(load.begin(), load.end()) - load.begin());
    if (load[most] <= load[least] + 1) break;
    std::uint32_t chosen = k_none;
    for (std::uint32_t p = 0; p < partitions; ++p) {
      if (!holds(sets[p], most) || holds(sets[p], least)) continue;
      if (chosen == k_none || changed[p] > changed[chosen] ||
          (changed[p] == changed[chosen] && distance[p][least] < distance[chosen][least])) {
        chosen = p;
      }
    }
    changed[chosen] = true;
    auto& set = sets[chosen];
    *std::find(set.begin(), set.end(), most) = least;
    --load[most];
    ++load[least];
  }

  for (std::uint32_t p = 0; p < partitions; ++p) {
    for (std::uint32_t n : sets[p]) result[p].push_back(nodes[n]);
  }
  return result;
}

}  // namespace annal::cluster
