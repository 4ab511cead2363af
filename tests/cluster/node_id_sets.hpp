#pragma once

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cluster/cluster_map.hpp"

namespace annal::cluster::testing {

inline constexpr std::uint32_t k_partitions = 64;
inline constexpr std::size_t k_max_nodes = 16;

// Node id sets the placement properties are checked on: sequential names,
// zero-padded names, then random ids from fixed seeds.
inline std::vector<std::vector<node_id>> id_sets(std::size_t count = 6) {
  std::vector<std::vector<node_id>> sets(2);
  for (std::size_t i = 1; i <= k_max_nodes; ++i) {
    sets[0].push_back("node-" + std::to_string(i));
    char padded[16];
    std::snprintf(padded, sizeof padded, "node-%02zu", i);
    sets[1].push_back(padded);
  }
  for (std::uint64_t seed = 1; sets.size() < count; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<node_id> ids;
    for (std::size_t i = 0; i < k_max_nodes; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "n-%016llx", static_cast<unsigned long long>(rng()));
      ids.push_back(id);
    }
    sets.push_back(std::move(ids));
  }
  sets.resize(count);
  return sets;
}

inline node_entry active_node(const node_id& id) {
  return {id, id + ":7400", id + ":8080", node_state::active};
}

// The first `count` ids of `ids`, all active, without ids[skip]; no layout.
inline cluster_map map_of(const std::vector<node_id>& ids, std::size_t count,
                          std::uint32_t replication, std::size_t skip = k_max_nodes) {
  cluster_map map;
  map.partition_count = k_partitions;
  map.replication_factor = replication;
  for (std::size_t i = 0; i < count; ++i) {
    if (i != skip) map.nodes.push_back(active_node(ids[i]));
  }
  return map;
}

}  // namespace annal::cluster::testing
