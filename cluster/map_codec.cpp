#include "cluster/map_codec.hpp"

#include <limits>

#include <nlohmann/json.hpp>

namespace annal::cluster {
namespace {

using json = nlohmann::json;

engine::error invalid(std::string message) {
  return {engine::errc::invalid_argument, "cluster map: " + std::move(message)};
}

// The field `key` of object `obj`; nullptr if absent.
const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// Reads an unsigned integer field that fits in T.
template <class T>
engine::status read_unsigned(const json& obj, const char* key, const std::string& where, bool required,
                             T& out) {
  const json* value = field(obj, key);
  if (value == nullptr) {
    if (required) return invalid(where + "missing field '" + key + "'");
    return {};
  }
  if (!value->is_number_unsigned() || value->get<std::uint64_t>() > std::numeric_limits<T>::max()) {
    return invalid(where + "field '" + key + "' must be an unsigned integer of at most " +
                   std::to_string(std::numeric_limits<T>::max()));
  }
  out = value->get<T>();
  return {};
}

engine::status read_string(const json& obj, const char* key, const std::string& where, bool required,
                           std::string& out) {
  const json* value = field(obj, key);
  if (value == nullptr) {
    if (required) return invalid(where + "missing field '" + key + "'");
    return {};
  }
  if (!value->is_string()) return invalid(where + "field '" + key + "' must be a string");
  out = value->get<std::string>();
  return {};
}

engine::result<node_entry> read_node(const json& obj, std::size_t index) {
  const std::string where = "nodes[" + std::to_string(index) + "]: ";
  if (!obj.is_object()) return invalid(where + "must be an object");
  node_entry node;
  std::string state;
  if (auto st = read_string(obj, "id", where, true, node.id); !st) return st.err();
  if (auto st = read_string(obj, "address", where, true, node.address); !st) return st.err();
  if (auto st = read_string(obj, "httpAddress", where, false, node.http_address); !st) return st.err();
  if (auto st = read_string(obj, "state", where, true, state); !st) return st.err();
  auto parsed = node_state_from_name(state);
  if (!parsed) return invalid(where + "unknown state '" + state + "'");
  node.state = *parsed;
  return node;
}

engine::status read_override(const json& obj, std::size_t index, cluster_map& map) {
  const std::string where = "overrides[" + std::to_string(index) + "]: ";
  if (!obj.is_object()) return invalid(where + "must be an object");
  std::uint32_t p = 0;
  if (auto st = read_unsigned(obj, "partition", where, true, p); !st) return st;
  const json* replicas = field(obj, "replicas");
  if (replicas == nullptr) return invalid(where + "missing field 'replicas'");
  if (!replicas->is_array()) return invalid(where + "field 'replicas' must be an array");
  replica_set set;
  for (const auto& id : *replicas) {
    if (!id.is_string()) return invalid(where + "replicas must be node ids (strings)");
    set.push_back(id.get<std::string>());
  }
  if (!map.overrides.emplace(partition_id{p}, std::move(set)).second) {
    return invalid(where + "partition " + std::to_string(p) + " overridden twice");
  }
  return {};
}

engine::status read_layout(const json& layout, cluster_map& map) {
  if (!layout.is_array()) return invalid("field 'layout' must be an array");
  for (std::size_t p = 0; p < layout.size(); ++p) {
    const std::string where = "layout[" + std::to_string(p) + "]: ";
    if (!layout[p].is_array()) return invalid(where + "must be an array of node ids");
    replica_set set;
    for (const auto& id : layout[p]) {
      if (!id.is_string()) return invalid(where + "replicas must be node ids (strings)");
      set.push_back(id.get<std::string>());
    }
    map.layout.push_back(std::move(set));
  }
  return {};
}

engine::result<cluster_map> read_map(const json& doc) {
  if (!doc.is_object()) return invalid("the document must be a JSON object");
  cluster_map map;
  std::uint32_t version = k_map_format_version;
  if (auto st = read_unsigned(doc, "formatVersion", "", false, version); !st) return st.err();
  if (version < k_oldest_map_format_version || version > k_map_format_version) {
    return invalid("unsupported formatVersion " + std::to_string(version) + " (this node reads " +
                   std::to_string(k_oldest_map_format_version) + " to " +
                   std::to_string(k_map_format_version) + ")");
  }
  if (auto st = read_unsigned(doc, "epoch", "", true, map.epoch); !st) return st.err();
  if (auto st = read_unsigned(doc, "partitionCount", "", true, map.partition_count); !st) return st.err();
  if (auto st = read_unsigned(doc, "replicationFactor", "", true, map.replication_factor); !st) {
    return st.err();
  }
  if (const json* approval = field(doc, "requireApproval")) {
    if (!approval->is_boolean()) return invalid("field 'requireApproval' must be a boolean");
    map.require_approval = approval->get<bool>();
  }
  const json* nodes = field(doc, "nodes");
  if (nodes == nullptr) return invalid("missing field 'nodes'");
  if (!nodes->is_array()) return invalid("field 'nodes' must be an array");
  for (std::size_t i = 0; i < nodes->size(); ++i) {
    auto node = read_node((*nodes)[i], i);
    if (!node) return node.err();
    map.nodes.push_back(std::move(*node));
  }
  if (const json* overrides = field(doc, "overrides")) {
    if (!overrides->is_array()) return invalid("field 'overrides' must be an array");
    for (std::size_t i = 0; i < overrides->size(); ++i) {
      if (auto st = read_override((*overrides)[i], i, map); !st) return st.err();
    }
  }
  if (const json* layout = field(doc, "layout")) {
    if (version < 2) return invalid("field 'layout' needs formatVersion 2");
    if (auto st = read_layout(*layout, map); !st) return st.err();
  }
  if (auto st = validate(map); !st) return invalid(st.err().message);
  return map;
}

}  // namespace

std::string to_json(const cluster_map& map) {
  json nodes = json::array();
  for (const auto& node : map.nodes) {
    nodes.push_back({{"id", node.id},
                     {"address", node.address},
                     {"httpAddress", node.http_address},
                     {"state", node_state_name(node.state)}});
  }
  json overrides = json::array();
  for (const auto& [p, replicas] : map.overrides) {
    overrides.push_back({{"partition", p.value()}, {"replicas", replicas}});
  }
  json doc = {{"formatVersion", k_map_format_version},
              {"epoch", map.epoch},
              {"partitionCount", map.partition_count},
              {"replicationFactor", map.replication_factor},
              {"requireApproval", map.require_approval},
              {"nodes", std::move(nodes)},
              {"overrides", std::move(overrides)}};
  if (!map.layout.empty()) doc["layout"] = map.layout;
  return doc.dump();
}

engine::result<cluster_map> map_from_json(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid("not valid JSON");
  return read_map(doc);
}

}  // namespace annal::cluster
