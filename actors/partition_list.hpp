#pragma once

#include <cstdint>
#include <vector>

#include "engine/errors.hpp"
#include "engine/types.hpp"

namespace annal::actors {

// Checks a list of partitions a request names against a cluster of
// `partition_count`: errc::invalid_argument for a partition out of range or
// listed twice. An empty list (every partition) is valid.
engine::status check_partition_list(const std::vector<partition_id>& partitions,
                                    std::uint32_t partition_count);

}  // namespace annal::actors
