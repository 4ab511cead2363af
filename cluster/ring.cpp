#include "cluster/ring.hpp"

#include <xxhash.h>

#include <algorithm>
#include <string>

namespace annal::cluster {

std::uint64_t node_token(std::string_view node, std::uint32_t index) {
  std::string key;
  key.reserve(node.size() + 11);
  key.append(node);
  key.push_back('#');
  key.append(std::to_string(index));
  return XXH64(key.data(), key.size(), k_token_seed);
}

std::uint64_t partition_point(partition_id p, std::uint32_t partition_count) {
  const auto scaled = static_cast<unsigned __int128>(p.value()) << 64;
  return static_cast<std::uint64_t>(scaled / partition_count);
}

ring::ring(std::vector<node_id> nodes, std::uint32_t tokens_per_node) : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  tokens_.resize(nodes_.size());
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    auto& tokens = tokens_[n];
    tokens.reserve(tokens_per_node);
    for (std::uint32_t i = 0; i < tokens_per_node; ++i) tokens.push_back(node_token(nodes_[n], i));
    std::sort(tokens.begin(), tokens.end());
  }
}

std::vector<ring_hit> ring::walk(std::uint64_t point) const {
  std::vector<ring_hit> hits;
  hits.reserve(nodes_.size());
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const auto& tokens = tokens_[n];
    if (tokens.empty()) continue;
    auto next = std::lower_bound(tokens.begin(), tokens.end(), point);
    const std::uint64_t token = next == tokens.end() ? tokens.front() : *next;
    // Unsigned wrap-around gives the clockwise distance past 2^64.
    hits.push_back({static_cast<std::uint32_t>(n), token - point});
  }
  // nodes_ is sorted by id, so ties on distance fall back to the id.
  std::sort(hits.begin(), hits.end(), [](const ring_hit& a, const ring_hit& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.node < b.node;
  });
  return hits;
}

std::vector<node_id> ring::successors(std::uint64_t point, std::size_t count) const {
  std::vector<node_id> out;
  for (const auto& hit : walk(point)) {
    if (out.size() == count) break;
    out.push_back(nodes_[hit.node]);
  }
  return out;
}

}  // namespace annal::cluster
