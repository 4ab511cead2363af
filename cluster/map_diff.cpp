#include "cluster/map_diff.hpp"

#include <algorithm>

#include "cluster/placement.hpp"

namespace annal::cluster {

std::vector<partition_move> diff(const cluster_map& from, const cluster_map& to) {
  return diff(placement(from), placement(to));
}

std::vector<partition_move> diff(const std::vector<replica_set>& from,
                                 const std::vector<replica_set>& to) {
  static const replica_set none;
  std::vector<partition_move> moves;
  const std::size_t partitions = std::max(from.size(), to.size());
  for (std::size_t p = 0; p < partitions; ++p) {
    const replica_set& before = p < from.size() ? from[p] : none;
    const replica_set& after = p < to.size() ? to[p] : none;
    if (before != after) {
      moves.push_back({partition_id{static_cast<std::uint32_t>(p)}, before, after});
    }
  }
  return moves;
}

}  // namespace annal::cluster
