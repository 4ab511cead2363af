#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cluster/node_id.hpp"
#include "engine/types.hpp"

namespace annal::cluster {

// The 64-bit consistent-hash ring. Token positions and partition points are
// part of the persistent format (docs/cluster.md, "Placement"): every node
// computes placement from them independently, so changing either moves
// partitions without any map change.
inline constexpr std::uint32_t k_tokens_per_node = 64;
inline constexpr std::uint64_t k_token_seed = 0;

// Position of token `index` of `node`: XXH64 of "<node>#<index>" (index in
// decimal, no padding) with seed k_token_seed.
std::uint64_t node_token(std::string_view node, std::uint32_t index);

// Point of partition p on the ring: floor(p * 2^64 / partition_count), so the
// P points are evenly spaced and point(0) = 0.
// Requires: p < partition_count.
std::uint64_t partition_point(partition_id p, std::uint32_t partition_count);

// One node met on a clockwise walk, with the clockwise distance from the
// starting point to the node's first token at or after it.
struct ring_hit {
  std::uint32_t node = 0;  // index into ring::nodes()
  std::uint64_t distance = 0;

  friend bool operator==(const ring_hit&, const ring_hit&) = default;
};

// The tokens of a set of nodes. Immutable after construction, so it may be
// shared between threads. The result depends only on the set of ids, never
// on their order.
class ring {
 public:
  // Duplicated ids are kept once. Requires: tokens_per_node > 0.
  explicit ring(std::vector<node_id> nodes, std::uint32_t tokens_per_node = k_tokens_per_node);

  // The nodes, sorted by id; ring_hit::node indexes this vector.
  const std::vector<node_id>& nodes() const { return nodes_; }

  // Every node, nearest first: ordered by clockwise distance from `point` to
  // the node's first token at or after `point` (wrapping at 2^64), ties by id.
  std::vector<ring_hit> walk(std::uint64_t point) const;

  // The first `count` distinct nodes clockwise from `point` (fewer if the
  // ring has fewer nodes): plain consistent hashing, without load bounds.
  std::vector<node_id> successors(std::uint64_t point, std::size_t count) const;

 private:
  std::vector<node_id> nodes_;
  // tokens_[i]: the sorted token positions of nodes_[i].
  std::vector<std::vector<std::uint64_t>> tokens_;
};

}  // namespace annal::cluster
