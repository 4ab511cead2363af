#pragma once

#include <string>
#include <string_view>

namespace annal::cluster {

// A node's name in the cluster map, e.g. "node-1". It names the node's etcd
// keys (/annal/nodes/<id>) and seeds its ring tokens (docs/cluster.md), so it
// must never change for the life of the node.
using node_id = std::string;

inline constexpr std::size_t k_max_node_id_bytes = 64;

// A node id is 1..64 bytes of [A-Za-z0-9._-].
bool valid_node_id(std::string_view id);

}  // namespace annal::cluster
