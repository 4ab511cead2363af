#include "cluster/placement.hpp"

#include <algorithm>
#include <limits>

#include "cluster/ring.hpp"

namespace annal::cluster {
namespace {

// A candidate (partition -> node) assignment of one round.
struct candidate {
  std::uint64_t distance;
  std::uint32_t partition;
  std::uint32_t node;
};

std::vector<node_id> active_nodes(const cluster_map& map) {
  std::vector<node_id> ids;
  for (const auto& node : map.nodes) {
    if (node.state == node_state::active) ids.push_back(node.id);
  }
  return ids;
}

}  // namespace

std::uint64_t node_capacity(std::uint32_t partition_count, std::uint32_t replication_factor,
                            std::size_t node_count) {
  const std::uint64_t replicas = std::uint64_t{partition_count} * replication_factor;
  const std::uint64_t n = node_count;
  const std::uint64_t at_least = (replicas + n - 1) / n;
  const std::uint64_t bound = replicas * k_load_bound_numerator / (k_load_bound_denominator * n);
  return std::max(at_least, bound);
}

std::vector<replica_set> targets(const cluster_map& map) {
  if (!map.layout.empty()) return map.layout;
  const std::uint32_t partitions = map.partition_count;
  std::vector<replica_set> sets(partitions);
  const ring nodes_ring(active_nodes(map));
  const auto& nodes = nodes_ring.nodes();
  const std::size_t node_count = nodes.size();

  if (node_count > 0) {
    const std::size_t wanted = std::min<std::size_t>(map.replication_factor, node_count);
    const std::uint64_t capacity = node_capacity(partitions, map.replication_factor, node_count);
    std::vector<std::uint64_t> load(node_count, 0);
    std::vector<std::vector<ring_hit>> walks(partitions);
    std::vector<std::vector<std::uint32_t>> chosen(partitions);
    for (std::uint32_t p = 0; p < partitions; ++p) {
      walks[p] = nodes_ring.walk(partition_point(partition_id{p}, partitions));
    }

    // Round k offers every partition that still needs replicas its k-th node
    // clockwise; offers are granted nearest first while the node has room.
    // A partition's nodes are thus distinct and in clockwise order.
    std::vector<candidate> round;
    for (std::size_t k = 0; k < node_count; ++k) {
      round.clear();
      for (std::uint32_t p = 0; p < partitions; ++p) {
        if (chosen[p].size() < wanted) round.push_back({walks[p][k].distance, p, walks[p][k].node});
      }
      if (round.empty()) break;
      std::sort(round.begin(), round.end(), [](const candidate& a, const candidate& b) {
        return a.distance != b.distance ? a.distance < b.distance : a.partition < b.partition;
      });
      for (const auto& c : round) {
        if (load[c.node] < capacity) {
          chosen[c.partition].push_back(c.node);
          ++load[c.node];
        }
      }
    }

    // Every node left was full (possible only when capacity * N is close to
    // P * R): exceed the bound on the least loaded node, nearest first.
    for (std::uint32_t p = 0; p < partitions; ++p) {
      while (chosen[p].size() < wanted) {
        std::uint32_t best = 0;
        std::uint64_t best_load = std::numeric_limits<std::uint64_t>::max();
        for (const auto& hit : walks[p]) {
          const bool taken = std::find(chosen[p].begin(), chosen[p].end(), hit.node) != chosen[p].end();
          if (!taken && load[hit.node] < best_load) {
            best = hit.node;
            best_load = load[hit.node];
          }
        }
        chosen[p].push_back(best);
        ++load[best];
      }
      for (std::uint32_t n : chosen[p]) sets[p].push_back(nodes[n]);
    }
  }
  return sets;
}

std::vector<replica_set> placement(const cluster_map& map) {
  auto sets = targets(map);
  const std::uint32_t partitions = map.partition_count;
  for (const auto& [p, replicas] : map.overrides) {
    if (p.value() < partitions) sets[p.value()] = replicas;
  }
  return sets;
}

std::optional<node_id> owner(const cluster_map& map, partition_id p) {
  auto sets = placement(map);
  if (p.value() >= sets.size() || sets[p.value()].empty()) return std::nullopt;
  return std::move(sets[p.value()].front());
}

std::map<node_id, std::uint32_t> replica_counts(const std::vector<replica_set>& sets) {
  std::map<node_id, std::uint32_t> counts;
  for (const auto& set : sets) {
    for (const auto& id : set) ++counts[id];
  }
  return counts;
}

}  // namespace annal::cluster
