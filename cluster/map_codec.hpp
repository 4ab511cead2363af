#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cluster/cluster_map.hpp"
#include "engine/errors.hpp"

namespace annal::cluster {

// The JSON form of the cluster map, as stored at /annal/map
// (docs/cluster.md, "Cluster map JSON"). Version 2 added the layout; version
// 1 maps (no layout) are still read. Nodes that read only version 1 refuse a
// version 2 map rather than place partitions differently.
inline constexpr std::uint32_t k_map_format_version = 2;
inline constexpr std::uint32_t k_oldest_map_format_version = 1;

// Compact JSON, version k_map_format_version; nodes in map order, overrides
// by partition id, the layout (if any) by partition id.
std::string to_json(const cluster_map& map);

// Parses and validates a map. errc::invalid_argument with a message naming
// the field for: bad JSON, a missing or mistyped field, an unknown node state
// or format version, and anything validate() rejects. Unknown fields are
// ignored.
engine::result<cluster_map> map_from_json(std::string_view json);

}  // namespace annal::cluster
