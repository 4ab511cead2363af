#include "cluster/cluster_map.hpp"

#include <algorithm>
#include <set>

#include "cluster/placement.hpp"
#include "cluster/rebalance.hpp"

namespace annal::cluster {
namespace {

engine::error invalid(std::string message) {
  return {engine::errc::invalid_argument, std::move(message)};
}

engine::status validate_node(const node_entry& node) {
  if (!valid_node_id(node.id)) {
    return invalid("invalid node id '" + node.id + "': expected 1.." +
                   std::to_string(k_max_node_id_bytes) + " bytes of [A-Za-z0-9._-]");
  }
  if (node.address.empty()) return invalid("node '" + node.id + "' has no address");
  return {};
}

engine::status validate_override(const cluster_map& map, partition_id p, const replica_set& replicas) {
  const std::string where = "override of partition " + std::to_string(p.value());
  if (p.value() >= map.partition_count) {
    return invalid(where + ": partition out of range (partition count " +
                   std::to_string(map.partition_count) + ")");
  }
  if (replicas.empty()) return invalid(where + ": empty replica set");
  std::set<std::string_view> seen;
  for (const auto& id : replicas) {
    if (map.find(id) == nullptr) return invalid(where + ": unknown node '" + id + "'");
    if (!seen.insert(id).second) return invalid(where + ": node '" + id + "' named twice");
  }
  return {};
}

engine::status validate_layout(const cluster_map& map) {
  if (map.layout.empty()) return {};
  if (map.layout.size() != map.partition_count) {
    return invalid("layout has " + std::to_string(map.layout.size()) + " sets for " +
                   std::to_string(map.partition_count) + " partitions");
  }
  std::size_t active = 0;
  for (const auto& node : map.nodes) active += node.state == node_state::active;
  const std::size_t wanted = std::min<std::size_t>(map.replication_factor, active);
  for (std::size_t p = 0; p < map.layout.size(); ++p) {
    const std::string where = "layout of partition " + std::to_string(p);
    const auto& set = map.layout[p];
    if (set.size() != wanted) {
      return invalid(where + ": " + std::to_string(set.size()) + " replicas, expected " +
                     std::to_string(wanted));
    }
    std::set<std::string_view> seen;
    for (const auto& id : set) {
      const node_entry* node = map.find(id);
      if (node == nullptr) return invalid(where + ": unknown node '" + id + "'");
      if (node->state != node_state::active) {
        return invalid(where + ": node '" + id + "' is not active");
      }
      if (!seen.insert(id).second) return invalid(where + ": node '" + id + "' named twice");
    }
  }
  return {};
}

cluster_map next_epoch(const cluster_map& map) {
  cluster_map next = map;
  ++next.epoch;
  return next;
}

bool same_active_nodes(const cluster_map& a, const cluster_map& b) {
  auto active = [](const cluster_map& map) {
    std::set<std::string_view> ids;
    for (const auto& node : map.nodes) {
      if (node.state == node_state::active) ids.insert(node.id);
    }
    return ids;
  };
  return active(a) == active(b);
}

// `next` with a layout rebalanced from the targets of `before`, if the edit
// changed the active nodes.
cluster_map relaid(const cluster_map& before, cluster_map next) {
  if (!same_active_nodes(before, next)) {
    next.layout = rebalance(targets(before), next);
  }
  return next;
}

}  // namespace

bool valid_node_id(std::string_view id) {
  if (id.empty() || id.size() > k_max_node_id_bytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

const char* node_state_name(node_state s) {
  switch (s) {
    case node_state::joining: return "joining";
    case node_state::active: return "active";
    case node_state::draining: return "draining";
  }
  return "unknown";
}

std::optional<node_state> node_state_from_name(std::string_view name) {
  for (auto s : {node_state::joining, node_state::active, node_state::draining}) {
    if (name == node_state_name(s)) return s;
  }
  return std::nullopt;
}

const node_entry* cluster_map::find(std::string_view id) const {
  auto it = std::find_if(nodes.begin(), nodes.end(), [&](const node_entry& n) { return n.id == id; });
  return it == nodes.end() ? nullptr : &*it;
}

engine::status validate(const cluster_map& map) {
  if (map.partition_count == 0) return invalid("partition count must be at least 1");
  if (map.replication_factor == 0) return invalid("replication factor must be at least 1");
  std::set<std::string_view> ids;
  for (const auto& node : map.nodes) {
    if (auto st = validate_node(node); !st) return st;
    if (!ids.insert(node.id).second) return invalid("duplicate node id '" + node.id + "'");
  }
  for (const auto& [p, replicas] : map.overrides) {
    if (auto st = validate_override(map, p, replicas); !st) return st;
  }
  return validate_layout(map);
}

node_state initial_state(const cluster_map& map) {
  return map.require_approval ? node_state::joining : node_state::active;
}

engine::result<cluster_map> add_node(const cluster_map& map, node_entry node) {
  if (auto st = validate_node(node); !st) return st.err();
  if (map.find(node.id) != nullptr) {
    return engine::error{engine::errc::conflict, "node '" + node.id + "' is already in the map"};
  }
  cluster_map next = next_epoch(map);
  next.nodes.push_back(std::move(node));
  return relaid(map, std::move(next));
}

engine::result<cluster_map> set_node_state(const cluster_map& map, std::string_view id,
                                           node_state state) {
  if (map.find(id) == nullptr) {
    return engine::error{engine::errc::not_found, "no node '" + std::string(id) + "' in the map"};
  }
  cluster_map next = next_epoch(map);
  for (auto& node : next.nodes) {
    if (node.id == id) node.state = state;
  }
  return relaid(map, std::move(next));
}

std::vector<replica_set> initial_layout(const cluster_map& map) {
  cluster_map unlaid = map;
  unlaid.layout.clear();
  return rebalance(targets(unlaid), unlaid);
}

engine::result<cluster_map> remove_node(const cluster_map& map, std::string_view id) {
  const node_entry* node = map.find(id);
  if (node == nullptr) {
    return engine::error{engine::errc::not_found, "no node '" + std::string(id) + "' in the map"};
  }
  if (node->state == node_state::active) {
    return invalid("node '" + node->id + "' is active and still holds partitions: drain it first");
  }
  for (const auto& [p, replicas] : map.overrides) {
    if (std::find(replicas.begin(), replicas.end(), id) != replicas.end()) {
      return invalid("node '" + node->id + "' still holds partition " + std::to_string(p.value()) +
                     " (override): wait for its handoff to complete");
    }
  }
  cluster_map next = next_epoch(map);
  std::erase_if(next.nodes, [&](const node_entry& n) { return n.id == id; });
  return next;
}

engine::result<cluster_map> set_override(const cluster_map& map, partition_id p,
                                         replica_set replicas) {
  if (auto st = validate_override(map, p, replicas); !st) return st.err();
  cluster_map next = next_epoch(map);
  next.overrides[p] = std::move(replicas);
  return next;
}

engine::result<cluster_map> clear_override(const cluster_map& map, partition_id p) {
  if (!map.overrides.contains(p)) {
    return engine::error{engine::errc::not_found,
                         "partition " + std::to_string(p.value()) + " has no override"};
  }
  cluster_map next = next_epoch(map);
  next.overrides.erase(p);
  return next;
}

}  // namespace annal::cluster
