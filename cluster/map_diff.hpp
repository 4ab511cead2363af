#pragma once

#include <vector>

#include "cluster/cluster_map.hpp"

namespace annal::cluster {

// A partition whose replica set changed between two maps.
struct partition_move {
  partition_id partition;
  replica_set from;  // primary first; empty if nobody held it
  replica_set to;

  friend bool operator==(const partition_move&, const partition_move&) = default;
};

// The partitions whose replica set (including the order, i.e. which replica
// is primary) differs, by increasing partition id.
// Requires: validate(from).ok(), validate(to).ok(), equal partition counts.
std::vector<partition_move> diff(const cluster_map& from, const cluster_map& to);

// The same over two placements; a partition missing from one side counts as
// having an empty replica set there.
std::vector<partition_move> diff(const std::vector<replica_set>& from,
                                 const std::vector<replica_set>& to);

}  // namespace annal::cluster
