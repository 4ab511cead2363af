#pragma once

#include <cstdint>
#include <string>

#include "engine/partition.hpp"
#include "engine/types.hpp"

// `annal stats`: what each partition holds, as its owner reports it
// (docs/cluster.md, "Read-all and stats").
namespace annal::actors {

struct partition_stats {
  partition_id partition;
  std::string node;           // the node that owns and reported it
  std::uint64_t streams = 0;  // streams ever written (soft-deleted ones included)
  std::uint64_t events = 0;   // events ever appended (retention does not lower it)
  lsn end_lsn;                // bytes of acknowledged records in the partition log

  friend bool operator==(const partition_stats&, const partition_stats&) = default;
};

// The counts of `p` (its node left empty). Counts the stream index, O(streams).
// Requires: the caller owns `p` (its partition actor, or a test).
partition_stats stats_of(const engine::partition& p);

}  // namespace annal::actors
